/* Private state of the AI-core model shared by the instruction files
 * (core.c, isa_*.c), the L2 model (l2.c) and the launch (launch.c). The
 * kernel-facing API is isa.h; nothing outside src/npu_sim includes this. */
#ifndef HS_NPU_SIM_LAUNCH_H
#define HS_NPU_SIM_LAUNCH_H

#include "core/isa.h"
#include "npu_sim/device.h"
#include "npu_sim/isa.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Allocations per core (all buffers together). */
#define HS_NPU_MAX_ALLOCS 64
/* Trace slices kept per pipe per core (see hs_npu_track_add). */
#define HS_NPU_TRACK_SLICES 64
/* Bytes of an L2 line. */
#define HS_NPU_L2_LINE 512

/* One allocation and the last accesses to it, for the flag check: the end
 * of the last write and its pipe, and per pipe the end of its last read. */
typedef struct hs_npu_alloc_rec {
    hs_npu_buf buf;
    int64_t base, bytes; /* byte range inside the buffer */
    uint64_t w_end;
    int w_pipe;          /* -1: never written */
    uint64_t r_end[HS_PIPE_COUNT];
} hs_npu_alloc_rec;

/* Pending set_flag times of one (src, dst, id), oldest first. */
typedef struct hs_npu_flagq {
    uint64_t t[HS_NPU_FLAG_DEPTH];
    int count;
} hs_npu_flagq;

/* Busy intervals of one pipe for the trace: intervals separated by less
 * than `gap` cycles are merged; gap doubles whenever more than
 * HS_NPU_TRACK_SLICES would be kept. */
typedef struct hs_npu_track {
    uint64_t iv[HS_NPU_TRACK_SLICES][2];
    int n;
    uint64_t gap;
} hs_npu_track;

struct hs_npu_kblock;

struct hs_npu_core {
    struct hs_npu_kblock *blk;
    char name[24];
    int has_cube, has_vector;
    int64_t cap[HS_BUF_COUNT];  /* bytes; 0: this core has no such buffer */
    int64_t used[HS_BUF_COUNT]; /* bump allocator */
    uint8_t *mem[HS_BUF_COUNT]; /* execute mode: host arrays of cap bytes, else NULL */
    hs_npu_alloc_rec allocs[HS_NPU_MAX_ALLOCS];
    int nallocs;
    uint64_t free_at[HS_PIPE_COUNT];
    uint64_t busy[HS_PIPE_COUNT];
    hs_npu_flagq flags[HS_PIPE_COUNT][HS_PIPE_COUNT][HS_NPU_EVENT_IDS];
    hs_npu_flagq cross[HS_NPU_EVENT_IDS];
    int atomic_add;
    double flops;                       /* 2 m k n of this core's mmads */
    hs_npu_track *tracks;               /* HS_PIPE_COUNT tracks while tracing, else NULL */
};

/* One GM access as the L2 model sees it: `rows` rows of `row_bytes`
 * bytes, `ld` bytes apart, from `addr` inside the allocation at `base`, by
 * block `blk` at census cycle t. */
typedef struct hs_npu_l2_op {
    uintptr_t base, addr;
    int64_t rows, row_bytes, ld;
    uint64_t t;
    int32_t blk, write;
} hs_npu_l2_op;

/* The L2 line records of one launch (l2.c), and the thread that keeps
 * them while the kernels run (l2_pipe.c). */
struct hs_npu_l2_region;
struct l2_page;
struct hs_npu_l2_pipe;
typedef struct hs_npu_l2 {
    struct hs_npu_l2_region *regions, *last; /* allocations touched; last: the most recent */
    size_t nregions, cap_regions;
    struct l2_page **pool; /* free pages, kept between launches */
    size_t npool, cap_pool, nused;
    uint64_t count;  /* lines of the current launch */
    uint64_t t_max;  /* last census cycle seen */
    double fit;      /* min(1, l2_bytes / peak live footprint), set after the census */
    /* the current block's reads so far in this pass (l2_repeat.c) */
    struct hs_npu_l2_repeat *rep;
    size_t rep_cap, rep_count;
    uint64_t rep_gen;
    int rep_blk, rep_census;
    struct hs_npu_l2_pipe *pipe; /* NULL: the accesses are applied on the calling thread */
} hs_npu_l2;

/* GM bytes of one access split by where they are served from. */
typedef struct hs_npu_gm_split {
    double hbm, l2;
    double writeback; /* writes: bytes new to HBM's write-back (each line at most once per launch) */
} hs_npu_gm_split;

struct hs_npu_kblock {
    hs_npu *dev;
    hs_npu_l2 *l2;
    hs_npu_launch_kind kind;
    int idx, dim;
    int census;        /* 1 in the census pass */
    int executes;      /* 1 when functional bodies run (execute mode, timed pass) */
    hs_status status;  /* sticky: the first failure of the block */
    hs_npu_core *aic;  /* NULL in a VECTOR launch */
    hs_npu_core *aiv[2];
    int naiv;
    /* shared GM rates of the launch, bytes/cycle */
    double r_hbm, r_l2, w_l2;
    int timed;         /* 0 in a data-only pass (a timing-cache hit): no L2 model, no stats */
    /* GM traffic of the block for the stats */
    double hbm_bytes, l2_bytes;
};

/* ---- timing_cache.c ---- */

/* A simulated launch as the cache keeps it: its stats, what its trace
 * slice carries, and (when it was traced) its packed pipe rows. */
typedef struct hs_npu_timing {
    hs_npu_launch_stats ls;
    double flops, vector_util;
    void *rows;
    size_t rows_bytes;
} hs_npu_timing;

struct hs_npu_tcache;
/* The stored timing of a launch, or NULL. */
const hs_npu_timing *hs_npu_tcache_get(const struct hs_npu_tcache *tc, hs_npu_kernel_fn fn, hs_npu_launch_kind kind,
                                       int dim, const char *name, const hs_npu_key *k);
/* Stores a copy of t (made on first use in *tc); adds the rows to an entry
 * stored without them. */
hs_status hs_npu_tcache_put(struct hs_npu_tcache **tc, hs_npu_kernel_fn fn, hs_npu_launch_kind kind, int dim,
                            const char *name, const hs_npu_key *k, const hs_npu_timing *t);
void hs_npu_tcache_free(struct hs_npu_tcache *tc);

/* ---- core.c: cores, allocations, issue, flag check ---- */

/* Fresh core state for a block (keeps mem); name like "aic3". */
void hs_npu_core_reset(hs_npu_core *c, struct hs_npu_kblock *blk, const char *name, int has_cube, int has_vector);
/* Allocates (execute mode) or drops host arrays for c's buffers. */
hs_status hs_npu_core_mem(hs_npu_core *c, const hs_npu_spec *s, int has_cube, int has_vector, int execute);
void hs_npu_core_mem_free(hs_npu_core *c);

/* Records a failure on the block (first one wins) and returns it. */
hs_status hs_npu_fail(hs_npu_core *c, hs_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks view l for an instruction `op`: a live allocation of core c in
 * buffer buf (any buffer when buf == HS_BUF_COUNT), with at least n
 * elements inside the allocation. Records the failure. */
hs_status hs_npu_check_view(const char *op, hs_npu_core *c, hs_npu_local l, hs_npu_buf buf, int64_t n);
/* Host address of view l (execute mode), else NULL. */
uint8_t *hs_npu_view_mem(hs_npu_local l);

/* Issues an instruction of `cost` cycles on pipe p of c reading the
 * allocations of views rd[0..nrd) and writing those of wr[0..nwr): checks
 * the flags (HS_ERR_INTERNAL on a race), advances the pipe, records the
 * accesses and the trace interval. */
hs_status hs_npu_issue(const char *op, hs_npu_core *c, hs_npu_pipe p, uint64_t cost, const hs_npu_local *rd, int nrd,
                       const hs_npu_local *wr, int nwr);

/* Adds interval [start, end) to a trace track. */
void hs_npu_track_add(hs_npu_track *t, uint64_t start, uint64_t end);

/* First line of every instruction: its first operand must have a core,
 * and a failed block runs nothing more. */
#define HS_NPU_ENTER(fn, core)                                                                                         \
    do {                                                                                                               \
        if (!(core))                                                                                                   \
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: operand without a core", fn);                               \
        if ((core)->blk->status != HS_OK)                                                                              \
            return (core)->blk->status;                                                                                \
    } while (0)

/* Runs a check that records its failure on c's block, returning it. */
#define HS_NPU_CHECK(c, expr)                                                                                          \
    do {                                                                                                               \
        if ((expr) != HS_OK)                                                                                           \
            return (c)->blk->status;                                                                                   \
    } while (0)

/* Functional bodies' hot loops, compiled for AVX-512, AVX2 and the
 * x86-64-v2 baseline (core/isa.h: each call runs the level in use), without
 * FMA contraction so that every clone computes bit-identical results.
 * HS_NPU_CLONES(name, (params), (args)) defines `name` from name_body. */
#define HS_NPU_CLONES(name, params, args)                                                                              \
    HS_ISA_CLONES(optimize("no-trapping-math", "fp-contract=off"), name, params, args)

/* ceil(a / b) for positive b. */
static inline int64_t hs_npu_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* Element i of typed local memory m as float (int types converted). */
static inline float hs_npu_ld(const uint8_t *m, hs_dtype dt, int64_t i)
{
    switch (dt) {
    case HS_FP32: {
        float v;
        memcpy(&v, m + 4 * i, 4);
        return v;
    }
    case HS_BF16:
    case HS_FP16: {
        uint16_t h;
        memcpy(&h, m + 2 * i, 2);
        return dt == HS_BF16 ? hs_bf16_to_fp32(h) : hs_fp16_to_fp32(h);
    }
    case HS_INT32: {
        int32_t v;
        memcpy(&v, m + 4 * i, 4);
        return (float)v;
    }
    case HS_INT8: return (float)(int8_t)m[i];
    default: return 0.0f;
    }
}

/* Stores v as element i of typed memory m: narrower floats round to
 * nearest even; integers round to nearest (ties to even) and saturate,
 * NaN becomes 0. */
static inline void hs_npu_st(uint8_t *m, hs_dtype dt, int64_t i, float v)
{
    switch (dt) {
    case HS_FP32: memcpy(m + 4 * i, &v, 4); break;
    case HS_BF16:
    case HS_FP16: {
        uint16_t h = dt == HS_BF16 ? hs_fp32_to_bf16(v) : hs_fp32_to_fp16(v);
        memcpy(m + 2 * i, &h, 2);
        break;
    }
    case HS_INT32: {
        double r = v != v ? 0.0 : nearbyint((double)v);
        int32_t x = r >= 2147483647.0 ? INT32_MAX : r <= -2147483648.0 ? INT32_MIN : (int32_t)r;
        memcpy(m + 4 * i, &x, 4);
        break;
    }
    case HS_INT8: {
        double r = v != v ? 0.0 : nearbyint((double)v);
        m[i] = (uint8_t)(int8_t)(r >= 127.0 ? 127 : r <= -128.0 ? -128 : (int)r);
        break;
    }
    default: break;
    }
}

/* ---- vector_body.c: elementwise functional bodies ---- */

typedef enum hs_npu_vbody {
    HS_VB_BIN,    /* dst = src0 op src1 */
    HS_VB_SCALAR, /* dst = src0 op s */
    HS_VB_UNARY,  /* dst = op(src0) */
    HS_VB_AXPY,   /* dst += s * src0 */
    HS_VB_MLA,    /* dst += src0 * src1 */
    HS_VB_DUP     /* dst = s */
} hs_npu_vbody;

/* Computes n elements of a checked float instruction whose operands all
 * have dst's dtype, in fp32, rounding each result to that dtype. Does
 * nothing unless the block executes. */
void hs_npu_vector_body(hs_npu_vbody kind, hs_npu_vop op, float s, hs_npu_local dst, const hs_npu_local *src,
                        int nsrc, int64_t n);

/* n floats (fp32/fp16/bf16) of dtype xt at x converted to dt at d, the
 * narrowing rounding to nearest even (vcast's body). d may equal x only
 * when both dtypes have the same size. */
void hs_npu_vector_cast(uint8_t *d, hs_dtype dt, const uint8_t *x, hs_dtype xt, int64_t n);

/* ---- l2_pipe.c: the L2 reuse model of a launch ---- */

/* Starts a launch: an empty line table. */
hs_status hs_npu_l2_begin(hs_npu_l2 *l2);
/* After the census: fit = min(1, l2_bytes / peak live footprint). replay:
 * the timed pass makes exactly the census's accesses (estimate mode), so
 * the worker may compute their splits ahead. */
hs_status hs_npu_l2_end_census(hs_npu_l2 *l2, int64_t l2_bytes, int replay);
void hs_npu_l2_free(hs_npu_l2 *l2);
/* One GM access of `rows` rows of `row_bytes` bytes, `ld` bytes apart,
 * from `addr` inside the allocation at `base`, by block `blk` at cycle t:
 * in the census it records the lines and their live range; in the timed
 * pass it returns the bytes served by HBM and by L2. */
hs_status hs_npu_l2_access(hs_npu_l2 *l2, int blk, int census, int write, uint64_t t, uintptr_t base,
                           uintptr_t addr, int64_t rows, int64_t row_bytes, int64_t ld, hs_npu_gm_split *out);

/* ---- l2.c: the line table (one thread at a time) ---- */

hs_status hs_npu_l2_lines_begin(hs_npu_l2 *l2);
hs_status hs_npu_l2_lines_end_census(hs_npu_l2 *l2, int64_t l2_bytes);
void hs_npu_l2_lines_free(hs_npu_l2 *l2);
/* Census: records op's lines. Timed: adds its first-read, re-read and
 * write-back bytes to sums[0..2]. */
hs_status hs_npu_l2_apply(hs_npu_l2 *l2, const hs_npu_l2_op *op, int census, double sums[3]);
/* l2_repeat.c: *repeat = 1 when block blk already made this read in this
 * pass (the census then keeps t for the flush); else records it. */
hs_status hs_npu_l2_repeat_seen(hs_npu_l2 *l2, int blk, int census, uint64_t t, uintptr_t base, uintptr_t addr,
                                int64_t rows, int64_t row_bytes, int64_t ld, int *repeat);
/* Applies the census cycles of the repeats kept so far to their lines. */
hs_status hs_npu_l2_flush_repeats(hs_npu_l2 *l2);
/* Empties the memo (a new launch or pass); frees it. */
void hs_npu_l2_repeats_forget(hs_npu_l2 *l2);
void hs_npu_l2_repeats_free(hs_npu_l2 *l2);
/* l2.c: first = min(first, t_min), last = max(last, t_max) on every line
 * of an access whose lines the census has touched. */
hs_status hs_npu_l2_census_span(hs_npu_l2 *l2, uintptr_t base, uintptr_t addr, int64_t rows, int64_t row_bytes,
                                int64_t ld, uint64_t t_min, uint64_t t_max);

/* ---- GM access cost (isa_move.c) ---- */

/* How a GM access goes through the L2 model. */
typedef enum hs_gm_kind {
    HS_GM_READ,   /* split into first reads and re-reads by the L2 model */
    HS_GM_WRITE,  /* absorbed by L2 up to its fit, the rest at HBM rate */
    HS_GM_GATHER, /* a read at a data-dependent address: a first read from HBM, outside the L2 model */
    HS_GM_SCATTER /* a write at a data-dependent address: absorbed by L2 at its write rate and written
                     back in full, outside the L2 model */
} hs_gm_kind;

/* Validates and accounts a GM access of op on pipe p of core c; returns
 * its transfer cycles at the given rates (read: R_hbm and R_l2; write:
 * the write rates capped by `cap` bytes/cycle). */
hs_status hs_npu_gm_access(const char *op, hs_npu_core *c, hs_npu_pipe p, hs_gm_kind kind, const void *gm,
                           int64_t rows, int64_t row_bytes, int64_t ld_bytes, double cap, uint64_t *cycles);

#endif
