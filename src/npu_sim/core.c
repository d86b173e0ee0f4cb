/* AI-core state: local buffers and their allocations, pipe counters, the
 * flag queues, the per-allocation flag check, scalar instructions, and the
 * trace intervals of each pipe. */
#include "npu_sim/launch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const pipe_names[HS_PIPE_COUNT] = {"MTE2", "MTE1", "CUBE", "FIXPIPE", "VECTOR", "MTE3", "SCALAR"};
static const char *const buf_names[HS_BUF_COUNT] = {"L1", "L0A", "L0B", "L0C", "BT", "FB", "UB"};

/* Name of pipe p. */
const char *hs_npu_pipe_name(hs_npu_pipe p)
{
    return p >= 0 && p < HS_PIPE_COUNT ? pipe_names[p] : "?";
}

/* Name of buffer b. */
const char *hs_npu_buf_name(hs_npu_buf b)
{
    return b >= 0 && b < HS_BUF_COUNT ? buf_names[b] : "?";
}

/* Allocation alignment of each buffer in bytes: fractals (512 B) in the
 * cube buffers, 64 B in the bias/fixpipe buffers, 32 B blocks in UB. */
static int64_t buf_align(hs_npu_buf b)
{
    return b <= HS_BUF_L0C ? 512 : b == HS_BUF_UB ? 32 : 64;
}

/* Capacity of buffer b on a core with the given units (0: absent). */
static int64_t buf_cap(const hs_npu_spec *s, hs_npu_buf b, int has_cube, int has_vector)
{
    switch (b) {
    case HS_BUF_L1: return has_cube ? s->l1_bytes : 0;
    case HS_BUF_L0A: return has_cube ? s->l0a_bytes : 0;
    case HS_BUF_L0B: return has_cube ? s->l0b_bytes : 0;
    case HS_BUF_L0C: return has_cube ? s->l0c_bytes : 0;
    case HS_BUF_BT: return has_cube ? s->bias_table_bytes : 0;
    case HS_BUF_FB: return has_cube ? s->fixpipe_bytes : 0;
    case HS_BUF_UB: return has_vector ? s->ub_bytes : 0;
    default: return 0;
    }
}

/* Sets capacities and, in execute mode, host arrays for the buffers of a
 * core with the given units (arrays are kept across blocks). */
hs_status hs_npu_core_mem(hs_npu_core *c, const hs_npu_spec *s, int has_cube, int has_vector, int execute)
{
    for (int b = 0; b < HS_BUF_COUNT; b++) {
        c->cap[b] = buf_cap(s, (hs_npu_buf)b, has_cube, has_vector);
        if (execute && c->cap[b] && !c->mem[b]) {
            c->mem[b] = hs_alloc((size_t)c->cap[b]);
            if (!c->mem[b])
                return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU core model: %lld bytes for %s",
                                (long long)c->cap[b], buf_names[b]);
            memset(c->mem[b], 0, (size_t)c->cap[b]);
        }
    }
    return HS_OK;
}

/* Releases the host arrays of c. */
void hs_npu_core_mem_free(hs_npu_core *c)
{
    for (int b = 0; b < HS_BUF_COUNT; b++) {
        hs_free(c->mem[b]);
        c->mem[b] = NULL;
    }
}

/* Clears everything but the buffers' host arrays and capacities. */
void hs_npu_core_reset(hs_npu_core *c, struct hs_npu_kblock *blk, const char *name, int has_cube, int has_vector)
{
    c->blk = blk;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->has_cube = has_cube;
    c->has_vector = has_vector;
    memset(c->used, 0, sizeof c->used);
    c->nallocs = 0;
    memset(c->free_at, 0, sizeof c->free_at);
    memset(c->busy, 0, sizeof c->busy);
    memset(c->flags, 0, sizeof c->flags);
    memset(c->cross, 0, sizeof c->cross);
    c->atomic_add = 0;
    c->flops = 0;
    if (c->tracks)
        memset(c->tracks, 0, HS_PIPE_COUNT * sizeof *c->tracks);
}

/* Records the block's first failure with the core's name in front. */
hs_status hs_npu_fail(hs_npu_core *c, hs_status st, const char *fmt, ...)
{
    if (c->blk->status != HS_OK)
        return c->blk->status;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->blk->status = st;
    return hs_error(st, "NPU %s (block %d): %s", c->name, c->blk->idx, msg);
}

/* Bump-allocates elems of dt in buffer buf, aligned for that buffer. */
hs_status hs_npu_alloc(hs_npu_core *c, hs_npu_buf buf, hs_dtype dt, int64_t elems, hs_npu_local *out)
{
    if (!c || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_alloc: NULL argument");
    *out = (hs_npu_local){c, -1, buf, dt, 0, 0};
    if (c->blk->status != HS_OK)
        return c->blk->status;
    if (buf < 0 || buf >= HS_BUF_COUNT || !c->cap[buf])
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "hs_npu_alloc: this core has no %s buffer",
                           hs_npu_buf_name(buf));
    if (elems <= 0 || hs_dtype_size(dt) == 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "hs_npu_alloc: %lld elements of %s in %s", (long long)elems,
                           hs_dtype_name(dt), buf_names[buf]);
    if (c->nallocs == HS_NPU_MAX_ALLOCS)
        return hs_npu_fail(c, HS_ERR_NPU_BUFFER, "hs_npu_alloc: more than %d allocations", HS_NPU_MAX_ALLOCS);
    const int64_t bytes = elems * (int64_t)hs_dtype_size(dt);
    const int64_t base = hs_npu_ceil_div(c->used[buf], buf_align(buf)) * buf_align(buf);
    if (base + bytes > c->cap[buf])
        return hs_npu_fail(c, HS_ERR_NPU_BUFFER,
                           "%s overflow: %lld bytes (%lld x %s) requested, %lld of %lld in use", buf_names[buf],
                           (long long)bytes, (long long)elems, hs_dtype_name(dt), (long long)c->used[buf],
                           (long long)c->cap[buf]);
    hs_npu_alloc_rec *r = &c->allocs[c->nallocs];
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->base = base;
    r->bytes = bytes;
    r->w_pipe = -1;
    c->used[buf] = base + bytes;
    *out = (hs_npu_local){c, c->nallocs++, buf, dt, 0, elems};
    return HS_OK;
}

/* A view of elements [first, first + elems) of l. */
hs_npu_local hs_npu_sub(hs_npu_local l, int64_t first, int64_t elems)
{
    l.offset += first * (int64_t)hs_dtype_size(l.dtype);
    l.elems = elems;
    return l;
}

/* l reinterpreted as dtype dt. */
hs_npu_local hs_npu_as(hs_npu_local l, hs_dtype dt)
{
    const int64_t from = (int64_t)hs_dtype_size(l.dtype), to = (int64_t)hs_dtype_size(dt);
    l.elems = to ? l.elems * from / to : 0;
    l.dtype = dt;
    return l;
}

/* Host address of view l when the block executes, else NULL. */
uint8_t *hs_npu_view_mem(hs_npu_local l)
{
    if (!l.core || l.alloc < 0 || !l.core->blk->executes || !l.core->mem[l.buf])
        return NULL;
    return l.core->mem[l.buf] + l.core->allocs[l.alloc].base + l.offset;
}

/* Checks that view l is a live allocation of core c in buffer buf (or any
 * buffer for HS_BUF_COUNT) holding n elements inside its allocation. */
hs_status hs_npu_check_view(const char *op, hs_npu_core *c, hs_npu_local l, hs_npu_buf buf, int64_t n)
{
    if (l.core != c)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: an operand belongs to another core", op);
    if (l.alloc < 0 || l.alloc >= c->nallocs)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: an operand comes from a failed allocation", op);
    const hs_npu_alloc_rec *r = &c->allocs[l.alloc];
    if (buf != HS_BUF_COUNT && r->buf != buf)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: operand is in %s, expected %s", op, buf_names[r->buf],
                           buf_names[buf]);
    const int64_t es = (int64_t)hs_dtype_size(l.dtype);
    if (es == 0 || n < 0 || l.elems < n || l.offset < 0 || l.offset + n * es > r->bytes)
        return hs_npu_fail(c, HS_ERR_NPU_BUFFER,
                           "%s: %lld elements of %s at byte %lld exceed the %s allocation of %lld bytes (view of %lld)",
                           op, (long long)n, hs_dtype_name(l.dtype), (long long)l.offset, buf_names[r->buf],
                           (long long)r->bytes, (long long)l.elems);
    return HS_OK;
}

/* A race on allocation `a` of c: instruction `op` on pipe p would start at
 * `start` while pipe q's access ends at `end`. */
static hs_status race(const char *op, hs_npu_core *c, hs_npu_pipe p, const char *what, int a, int q, uint64_t start,
                      uint64_t end)
{
    return hs_npu_fail(c, HS_ERR_INTERNAL,
                       "%s on %s starts at cycle %llu but %s %s allocation #%d that %s uses until cycle %llu: "
                       "missing wait_flag(%s, %s)",
                       op, pipe_names[p], (unsigned long long)start, what, buf_names[c->allocs[a].buf], a,
                       pipe_names[q], (unsigned long long)end, pipe_names[q], pipe_names[p]);
}

/* Issues one instruction: flag check, pipe advance, access records. */
hs_status hs_npu_issue(const char *op, hs_npu_core *c, hs_npu_pipe p, uint64_t cost, const hs_npu_local *rd, int nrd,
                       const hs_npu_local *wr, int nwr)
{
    const uint64_t start = c->free_at[p], end = start + cost;
    for (int i = 0; i < nrd; i++) {
        const hs_npu_alloc_rec *r = &c->allocs[rd[i].alloc];
        if (r->w_pipe >= 0 && r->w_pipe != (int)p && start < r->w_end)
            return race(op, c, p, "reads", rd[i].alloc, r->w_pipe, start, r->w_end);
    }
    for (int i = 0; i < nwr; i++) {
        const hs_npu_alloc_rec *r = &c->allocs[wr[i].alloc];
        if (r->w_pipe >= 0 && r->w_pipe != (int)p && start < r->w_end)
            return race(op, c, p, "writes", wr[i].alloc, r->w_pipe, start, r->w_end);
        for (int q = 0; q < HS_PIPE_COUNT; q++)
            if (q != (int)p && start < r->r_end[q])
                return race(op, c, p, "writes", wr[i].alloc, q, start, r->r_end[q]);
    }
    for (int i = 0; i < nrd; i++) {
        hs_npu_alloc_rec *r = &c->allocs[rd[i].alloc];
        if (r->r_end[p] < end)
            r->r_end[p] = end;
    }
    for (int i = 0; i < nwr; i++) {
        hs_npu_alloc_rec *r = &c->allocs[wr[i].alloc];
        r->w_end = end;
        r->w_pipe = (int)p;
    }
    c->free_at[p] = end;
    c->busy[p] += cost;
    if (c->tracks)
        hs_npu_track_add(&c->tracks[p], start, end);
    return HS_OK;
}

/* Merges intervals of t closer than its gap; used when t is full. */
static void track_coarsen(hs_npu_track *t)
{
    t->gap = t->gap ? 2 * t->gap : 1;
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        if (n && t->iv[i][0] <= t->iv[n - 1][1] + t->gap)
            t->iv[n - 1][1] = t->iv[i][1];
        else {
            t->iv[n][0] = t->iv[i][0];
            t->iv[n][1] = t->iv[i][1];
            n++;
        }
    }
    t->n = n;
}

/* Appends [start, end) to t, merging it into the last interval when the
 * idle time between them is at most t->gap. */
void hs_npu_track_add(hs_npu_track *t, uint64_t start, uint64_t end)
{
    for (;;) {
        if (t->n && start <= t->iv[t->n - 1][1] + t->gap) {
            if (end > t->iv[t->n - 1][1])
                t->iv[t->n - 1][1] = end;
            return;
        }
        if (t->n < HS_NPU_TRACK_SLICES)
            break;
        track_coarsen(t);
    }
    t->iv[t->n][0] = start;
    t->iv[t->n][1] = end;
    t->n++;
}

/* ---------------------------------------------------------------- queries */

/* The spec of the device c belongs to. */
const hs_npu_spec *hs_npu_core_spec(const hs_npu_core *c)
{
    return &c->blk->dev->spec;
}

/* Cycle at which pipe p of c is next free. */
uint64_t hs_npu_pipe_time(const hs_npu_core *c, hs_npu_pipe p)
{
    return p >= 0 && p < HS_PIPE_COUNT ? c->free_at[p] : 0;
}

/* Cycles pipe p of c has spent executing instructions. */
uint64_t hs_npu_pipe_busy(const hs_npu_core *c, hs_npu_pipe p)
{
    return p >= 0 && p < HS_PIPE_COUNT ? c->busy[p] : 0;
}

/* The sticky status of c's block. */
hs_status hs_npu_core_status(const hs_npu_core *c)
{
    return c->blk->status;
}

/* ------------------------------------------------------------------ flags */

/* Checks a (src, dst, id) triple. */
static hs_status check_flag(const char *op, hs_npu_core *c, int src, int dst, int id)
{
    if (src < 0 || src >= HS_PIPE_COUNT || dst < 0 || dst >= HS_PIPE_COUNT || src == dst || id < 0 ||
        id >= HS_NPU_EVENT_IDS)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s(%d, %d, %d): pipes must differ and id be 0..%d", op, src,
                           dst, id, HS_NPU_EVENT_IDS - 1);
    return HS_OK;
}

/* Queues time t on q. */
static hs_status flag_push(const char *op, hs_npu_core *c, hs_npu_flagq *q, uint64_t t)
{
    if (q->count == HS_NPU_FLAG_DEPTH)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: more than %d sets pending without a wait", op,
                           HS_NPU_FLAG_DEPTH);
    q->t[q->count++] = t;
    return HS_OK;
}

/* Takes the oldest time from q and raises free[p] of c to it. */
static hs_status flag_pop(const char *op, hs_npu_core *c, hs_npu_flagq *q, hs_npu_pipe p)
{
    if (q->count == 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: no set pending, the chip would wait forever", op);
    const uint64_t t = q->t[0];
    memmove(q->t, q->t + 1, (size_t)(q->count - 1) * sizeof q->t[0]);
    q->count--;
    if (c->free_at[p] < t)
        c->free_at[p] = t;
    return HS_OK;
}

/* Queues free[src] on (src, dst, id). */
hs_status hs_npu_set_flag(hs_npu_core *c, hs_npu_pipe src, hs_npu_pipe dst, int id)
{
    if (c->blk->status != HS_OK)
        return c->blk->status;
    if (check_flag("set_flag", c, src, dst, id) != HS_OK)
        return c->blk->status;
    return flag_push("set_flag", c, &c->flags[src][dst][id], c->free_at[src]);
}

/* Takes the oldest set of (src, dst, id) and delays dst to it. */
hs_status hs_npu_wait_flag(hs_npu_core *c, hs_npu_pipe src, hs_npu_pipe dst, int id)
{
    if (c->blk->status != HS_OK)
        return c->blk->status;
    if (check_flag("wait_flag", c, src, dst, id) != HS_OK)
        return c->blk->status;
    return flag_pop("wait_flag", c, &c->flags[src][dst][id], dst);
}

/* Every pipe of c waits for the busiest one. */
hs_status hs_npu_barrier(hs_npu_core *c)
{
    if (c->blk->status != HS_OK)
        return c->blk->status;
    uint64_t t = 0;
    for (int p = 0; p < HS_PIPE_COUNT; p++)
        if (c->free_at[p] > t)
            t = c->free_at[p];
    for (int p = 0; p < HS_PIPE_COUNT; p++)
        c->free_at[p] = t;
    return HS_OK;
}

/* Checks the cores and id of a cross-core flag. */
static hs_status check_cross(const char *op, hs_npu_core *c, hs_npu_core *other, int pipe, int id)
{
    if (!other || other->blk != c->blk || pipe < 0 || pipe >= HS_PIPE_COUNT || id < 0 || id >= HS_NPU_EVENT_IDS)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: cores of one block, a valid pipe and id 0..%d required",
                           op, HS_NPU_EVENT_IDS - 1);
    return HS_OK;
}

/* Queues free[src_pipe] of src on dst's cross-core flag id. */
hs_status hs_npu_cross_set_flag(hs_npu_core *src, hs_npu_pipe src_pipe, hs_npu_core *dst, int id)
{
    if (src->blk->status != HS_OK)
        return src->blk->status;
    if (check_cross("cross_set_flag", src, dst, src_pipe, id) != HS_OK)
        return src->blk->status;
    return flag_push("cross_set_flag", src, &dst->cross[id], src->free_at[src_pipe]);
}

/* Takes the oldest cross-core set of id on dst and delays dst_pipe to it. */
hs_status hs_npu_cross_wait_flag(hs_npu_core *dst, hs_npu_pipe dst_pipe, int id)
{
    if (dst->blk->status != HS_OK)
        return dst->blk->status;
    if (check_cross("cross_wait_flag", dst, dst, dst_pipe, id) != HS_OK)
        return dst->blk->status;
    return flag_pop("cross_wait_flag", dst, &dst->cross[id], dst_pipe);
}

/* ----------------------------------------------------------------- scalar */

/* n scalar operations: n * lat_scalar cycles on SCALAR. */
hs_status hs_npu_scalar(hs_npu_core *c, int64_t n)
{
    if (c->blk->status != HS_OK)
        return c->blk->status;
    if (n < 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "hs_npu_scalar: %lld operations", (long long)n);
    if (n == 0)
        return HS_OK;
    return hs_npu_issue("scalar", c, HS_PIPE_SCALAR, (uint64_t)n * (uint64_t)c->blk->dev->spec.lat_scalar, NULL, 0,
                        NULL, 0);
}

/* Element i of UB view l as float: one scalar op reading l. */
float hs_npu_get_value(hs_npu_local l, int64_t i)
{
    hs_npu_core *c = l.core;
    if (!c) {
        hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_get_value: NULL view");
        return 0;
    }
    if (c->blk->status != HS_OK)
        return 0;
    if (i < 0) {
        hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "get_value: index %lld", (long long)i);
        return 0;
    }
    if (hs_npu_check_view("get_value", c, l, HS_BUF_UB, i + 1) != HS_OK ||
        hs_npu_issue("get_value", c, HS_PIPE_SCALAR, (uint64_t)c->blk->dev->spec.lat_scalar, &l, 1, NULL, 0) != HS_OK)
        return 0;
    const uint8_t *m = hs_npu_view_mem(l);
    return m ? hs_npu_ld(m, l.dtype, i) : 0.0f;
}

/* Writes v to element i of UB view l: one scalar op writing l. */
hs_status hs_npu_set_value(hs_npu_local l, int64_t i, float v)
{
    hs_npu_core *c = l.core;
    if (!c)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_set_value: NULL view");
    if (c->blk->status != HS_OK)
        return c->blk->status;
    if (i < 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "set_value: index %lld", (long long)i);
    if (hs_npu_check_view("set_value", c, l, HS_BUF_UB, i + 1) != HS_OK ||
        hs_npu_issue("set_value", c, HS_PIPE_SCALAR, (uint64_t)c->blk->dev->spec.lat_scalar, NULL, 0, &l, 1) != HS_OK)
        return c->blk->status;
    uint8_t *m = hs_npu_view_mem(l);
    if (m)
        hs_npu_st(m, l.dtype, i, v);
    return HS_OK;
}
