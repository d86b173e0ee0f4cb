/* The AI-core instruction API NPU kernels are written against (private).
 *
 * A kernel is a C function run once per block of a launch
 * (hs_npu_launch). A block of a CUBE launch is one cube core (AIC) with
 * its vector cores (AIV, 2 on 910B); a block of a VECTOR launch is one
 * AIV. The kernel allocates local buffers on its cores (hs_npu_alloc) and
 * issues instructions on them, the Ascend C way: each instruction goes to
 * one pipe of one core, and the pipes of a core run in parallel, ordered
 * only by flags.
 *
 * Timing. Every core keeps one cycle counter per pipe. An instruction on
 * pipe P costs lat_P + ceil(work / rate) cycles (the formulas are on each
 * instruction below and in docs/npu_model.md) and starts at
 *     start = max(free[P], the flags P has waited on),
 * after which free[P] = start + cost. set_flag(src, dst, id) captures
 * free[src]; wait_flag(src, dst, id) raises free[dst] to it. So kernels
 * written with ping-pong buffers and flags overlap by themselves, and a
 * kernel without double buffering serialises. Blocks run one after another
 * on the host, each on fresh counters; the launch lasts the slowest block
 * plus the launch overhead.
 *
 * Data. In execute mode instructions move and compute real data: GM
 * addresses are device addresses from hs_npu_malloc (host pointers), local
 * buffers are host arrays inside the core model. In estimate mode the very
 * same instructions cost the very same cycles but touch no data. Functional
 * bodies run in program order on the host, so results never depend on the
 * flags; instead the model checks the flags: an instruction that reads or
 * writes a local allocation while another pipe's write to it (or, for a
 * write, another pipe's read of it) has not ended yet fails with
 * HS_ERR_INTERNAL ("missing wait_flag"), as it would race on the chip.
 * The check is per allocation: data that two pipes touch at the same time
 * (ping and pong) must live in separate allocations, as Ascend C's queues
 * keep them.
 *
 * Errors are sticky per block: the first failing instruction records a
 * message (hs_last_error) and returns its status; every later instruction
 * of the block does nothing and returns the same status, and so does
 * hs_npu_launch. Kernels may therefore check statuses only where they
 * want (HS_TRY on allocations is the usual place).
 *
 * Rules for kernel functions: all data goes through this API (never
 * dereference GM addresses on the host: in estimate mode they are fake);
 * no host-side state may change between calls, because the launch runs
 * each block twice: a census pass that only records which GM lines each
 * block touches (for the L2 model) and then the timed pass. Values read
 * back with hs_npu_get_value are 0 in estimate mode and in the census, so
 * they may feed instruction operands but never control flow.
 */
#ifndef HS_NPU_SIM_ISA_H
#define HS_NPU_SIM_ISA_H

#include "hyperspeed/npu.h"

#include <stdint.h>

/* ----------------------------------------------------------- pipes, buffers */

/* Pipes, in the order of hs_npu_launch_stats.pipe_busy. */
typedef enum hs_npu_pipe {
    HS_PIPE_MTE2 = 0, /* GM -> L1 / UB */
    HS_PIPE_MTE1,     /* L1 -> L0A / L0B / bias table */
    HS_PIPE_CUBE,     /* mmad */
    HS_PIPE_FIXPIPE,  /* L0C -> GM */
    HS_PIPE_VECTOR,   /* vector ops on UB */
    HS_PIPE_MTE3,     /* UB -> GM */
    HS_PIPE_SCALAR,   /* scalar unit: loop bookkeeping, get/set_value */
    HS_PIPE_COUNT
} hs_npu_pipe;

/* Short name of a pipe ("MTE2"); "?" for an invalid one. */
const char *hs_npu_pipe_name(hs_npu_pipe p);

/* Local buffers, sized by the spec. An AIC has L1, L0A, L0B, L0C, the bias
 * table and the fixpipe buffer; an AIV has UB; a unified AI core (910A,
 * spec.vector_cores == 0) has all of them. */
typedef enum hs_npu_buf {
    HS_BUF_L1 = 0, /* l1_bytes: MTE2 target, NZ operand staging (512 B aligned) */
    HS_BUF_L0A,    /* l0a_bytes: mmad left operand, ZZ fractals (512 B aligned) */
    HS_BUF_L0B,    /* l0b_bytes: mmad right operand, ZN fractals (512 B aligned) */
    HS_BUF_L0C,    /* l0c_bytes: mmad accumulator, NZ fp32/int32 (512 B aligned) */
    HS_BUF_BT,     /* bias_table_bytes: per-column fp32 bias for mmad (64 B aligned) */
    HS_BUF_FB,     /* fixpipe_bytes: fixpipe parameters (64 B aligned) */
    HS_BUF_UB,     /* ub_bytes: vector operands (32 B aligned) */
    HS_BUF_COUNT
} hs_npu_buf;

/* Short name of a buffer ("L0A"); "?" for an invalid one. */
const char *hs_npu_buf_name(hs_npu_buf b);

/* One core of a block (opaque). */
typedef struct hs_npu_core hs_npu_core;

/* A typed view of part of a local allocation: `elems` elements of `dtype`
 * starting `offset` bytes into allocation `alloc` of `core`. A plain value:
 * copy it freely. Views are checked when an instruction uses them (inside
 * the allocation, the right buffer and dtype), not when they are made. */
typedef struct hs_npu_local {
    hs_npu_core *core;
    int alloc;      /* index of the allocation on its core; -1: failed allocation */
    hs_npu_buf buf;
    hs_dtype dtype;
    int64_t offset; /* bytes from the start of the allocation */
    int64_t elems;
} hs_npu_local;

/* Allocates `elems` elements of dtype `dt` in buffer `buf` of core c, for
 * the rest of the block (like Ascend C's TPipe::InitBuffer; there is no
 * free). Errors: HS_ERR_NPU_BUFFER when the buffer cannot hold it (message:
 * core, buffer, bytes asked, in use, capacity); HS_ERR_INVALID_ARGUMENT for
 * a buffer this core does not have or elems <= 0. */
hs_status hs_npu_alloc(hs_npu_core *c, hs_npu_buf buf, hs_dtype dt, int64_t elems, hs_npu_local *out);

/* Elements [first, first + elems) of l, as a view (checked when used). */
hs_npu_local hs_npu_sub(hs_npu_local l, int64_t first, int64_t elems);

/* l's bytes viewed as dtype dt (elems rescaled, rounded down). */
hs_npu_local hs_npu_as(hs_npu_local l, hs_dtype dt);

/* ------------------------------------------------------------ core queries */

const hs_npu_spec *hs_npu_core_spec(const hs_npu_core *c);
/* Cycle at which pipe p of c is next free (its counter). */
uint64_t hs_npu_pipe_time(const hs_npu_core *c, hs_npu_pipe p);
/* Cycles pipe p of c has been busy executing instructions. */
uint64_t hs_npu_pipe_busy(const hs_npu_core *c, hs_npu_pipe p);
/* The block's sticky status (HS_OK until an instruction failed). */
hs_status hs_npu_core_status(const hs_npu_core *c);

/* ------------------------------------------------------------------- flags */

/* Event ids per (src, dst) pipe pair: 0 .. HS_NPU_EVENT_IDS - 1. Each
 * (src, dst, id) is a queue of up to HS_NPU_FLAG_DEPTH pending sets, as
 * the chip's flag counters. */
#define HS_NPU_EVENT_IDS 8
#define HS_NPU_FLAG_DEPTH 4

/* SetFlag<src_dst>(id): queues free[src] (the end of everything issued to
 * src so far). Errors: HS_ERR_INVALID_ARGUMENT (bad pipe or id, src ==
 * dst, more than HS_NPU_FLAG_DEPTH pending). Costs no cycles. */
hs_status hs_npu_set_flag(hs_npu_core *c, hs_npu_pipe src, hs_npu_pipe dst, int id);
/* WaitFlag<src_dst>(id): takes the oldest queued set and makes dst's next
 * instruction start no earlier: free[dst] = max(free[dst], t). Errors:
 * HS_ERR_INVALID_ARGUMENT when nothing is queued (the chip would hang). */
hs_status hs_npu_wait_flag(hs_npu_core *c, hs_npu_pipe src, hs_npu_pipe dst, int id);
/* PipeBarrier<PIPE_ALL>: every pipe of c waits until all of c's pipes are
 * free. (Instructions on one pipe already run in order, so a one-pipe
 * barrier is implied.) */
hs_status hs_npu_barrier(hs_npu_core *c);

/* Cross-core flags inside a block (CrossCoreSetFlag / WaitFlag), used for
 * the AIC -> AIV hand-over through GM: queues free[src_pipe] of src for
 * core dst under id (0 .. HS_NPU_EVENT_IDS - 1); the wait raises free[pipe]
 * of dst. Both cores must belong to the same block. Errors as for the
 * intra-core flags. Costs no cycles. */
hs_status hs_npu_cross_set_flag(hs_npu_core *src, hs_npu_pipe src_pipe, hs_npu_core *dst, int id);
hs_status hs_npu_cross_wait_flag(hs_npu_core *dst, hs_npu_pipe dst_pipe, int id);

/* ------------------------------------------------------ GM <-> local (MTE) */

/* GM traffic cost. The launch's active blocks share HBM and L2:
 *     R_hbm = min(ddr_rate,       hbm_bw / freq / block_dim)   bytes/cycle
 *     R_l2  = min(l2_read_rate,   5 * hbm_bw / freq / block_dim)
 *     W_l2  = min(l2_write_rate,  5 * hbm_bw / freq / block_dim)
 * The L2 model (src/npu_sim/l2.c, docs/npu_model.md) splits the bytes of
 * each access into b_hbm (first reads, shared among the blocks that read
 * the same 512 B line) and b_l2 (re-reads and lines written earlier in the
 * kernel), of which only fit = min(1, l2_bytes / peak live footprint)
 * come from L2 (a line is live from its first to its last access). */

/* MTE2: copies `rows` rows of `cols` elements from GM (row stride gm_ld
 * elements) into dst (L1 or UB, row stride dst_ld elements), dtype
 * dst.dtype on both sides; rows == 1 is a plain contiguous copy. No 32-byte
 * alignment is required (DataCopyPad semantics). Cost:
 *     lat_mte2 + ceil(b_hbm / R_hbm + b_l2 / R_l2),  b = rows * cols * size. */
hs_status hs_npu_copy_in(hs_npu_local dst, int64_t dst_ld, const void *gm, int64_t gm_ld, int64_t rows,
                         int64_t cols);

/* MTE2 copy_in for addresses computed from data (an embedding's row
 * gathers): the same copy, charged as first reads at the HBM rate,
 *     lat_mte2 + ceil(b / R_hbm),
 * outside the L2 model, since which rows repeat is only known once the data
 * is there; so the cost is the same for any data and in estimate mode. */
hs_status hs_npu_copy_in_gather(hs_npu_local dst, int64_t dst_ld, const void *gm, int64_t gm_ld, int64_t rows,
                                int64_t cols);

/* MTE3: copies `rows` rows of `cols` elements from src (UB, row stride
 * src_ld) to GM (row stride gm_ld), dtype src.dtype. With atomic add on
 * (hs_npu_set_atomic_add) the values are added to GM instead. Cost:
 *     lat_mte3 + ceil(b_l2 / min(ub_to_l2_rate, W_l2) + b_hbm / min(ub_to_l2_rate, R_hbm)). */
hs_status hs_npu_copy_out(void *gm, int64_t gm_ld, hs_npu_local src, int64_t src_ld, int64_t rows, int64_t cols);

/* MTE3 copy_out to addresses computed from data (an embedding's row
 * scatter-adds): the same copy, charged outside the L2 model as a write
 * L2 absorbs at its write rate,
 *     lat_mte3 + ceil(b / min(ub_to_l2_rate, W_l2)),
 * every byte written back to HBM; so the cost is the same for any data
 * and in estimate mode. */
hs_status hs_npu_copy_out_scatter(void *gm, int64_t gm_ld, hs_npu_local src, int64_t src_ld, int64_t rows,
                                  int64_t cols);

/* SetAtomicAdd / SetAtomicNone: while on, MTE3 and FIXPIPE writes of
 * c add to GM (fp32, fp16, bf16: the sum is rounded to the GM dtype)
 * instead of storing. Costs nothing; the cost of a write is unchanged. */
void hs_npu_set_atomic_add(hs_npu_core *c, int on);

/* Fractal NZ. A matrix of R x C elements of a 2-byte type is stored as
 * column blocks of c0 = 16 columns (32 bytes), each column block holding
 * Rp = ceil16(R) rows of c0 contiguous elements:
 *     nz(r, c) = ((c / c0) * Rp + r) * c0 + c % c0
 * so every 16 x c0 fractal (512 B) is contiguous and row-major. int8:
 * c0 = 32 (16 x 32 fractals); fp32/int32 (L0C): c0 = 16 (1 KiB fractals).
 * Padding rows and columns are zero. */

/* c0 of a dtype: 32 bytes / size for 1- and 2-byte types, 16 for 4-byte. */
int hs_npu_c0(hs_dtype dt);

/* MTE2 nd2nz: reads the rows x cols ND tile at gm (row stride gm_ld
 * elements) and writes it NZ into dst (L1), padded with zeros to
 * ceil16(rows) x ceil_c0(cols); dst.dtype fp16, bf16 or int8. Cost as
 * hs_npu_copy_in for the rows * cols * size bytes read. */
hs_status hs_npu_copy_nd2nz(hs_npu_local dst, const void *gm, int64_t gm_ld, int rows, int cols);

/* MTE1 load2d into L0A. src (L1) holds a matrix S in NZ with src_rows
 * rows (a multiple of 16). transposed == 0: S holds A and the loaded
 * operand is A = S[row0 : row0 + m, col0 : col0 + k]; transposed == 1: S
 * holds A^T and A = S[row0 : row0 + k, col0 : col0 + m]^T (fractals are
 * transposed on the way, 2-byte dtypes only). row0 is a multiple of 16 and
 * col0 of c0. dst (L0A) receives A in ZZ: fractals row-block-major, each
 * 16 x c0 row-major:
 *     zz(i, j) = ((i / 16) * ceil_c0(k) / c0 + j / c0) * 16 * c0 + (i % 16) * c0 + j % c0
 * Padding beyond m x k is zero. Cost: lat_mte1 + ceil(bytes / l1_to_l0_rate),
 * bytes = ceil16(m) * ceil_c0(k) * size. */
hs_status hs_npu_load_l0a(hs_npu_local dst, hs_npu_local src, int src_rows, int row0, int col0, int m, int k,
                          int transposed);

/* MTE1 load2d into L0B. transposed == 0: S holds B (k x n) and
 * B = S[row0 : row0 + k, col0 : col0 + n] (fractals transposed on the way,
 * 2-byte dtypes only); transposed == 1: S holds B^T (n x k, e.g. a weight
 * [OC, C]) and B = S[row0 : row0 + n, col0 : col0 + k]^T. dst (L0B)
 * receives B in ZN: fractals k-block-major, each holding 16 columns of B
 * as rows of c0 k-values:
 *     zn(i, j) = ((i / c0) * ceil16(n) / 16 + j / 16) * 16 * c0 + (j % 16) * c0 + i % c0
 * Cost: lat_mte1 + ceil(ceil_c0(k) * ceil16(n) * size / l1_to_l0_rate). */
hs_status hs_npu_load_l0b(hs_npu_local dst, hs_npu_local src, int src_rows, int row0, int col0, int k, int n,
                          int transposed);

/* MTE1: copies n fp32 values from src (L1) to dst (bias table) for
 * hs_npu_mmad_bias. Cost: lat_mte1 + ceil(4 n / l1_to_l0_rate). */
hs_status hs_npu_load_bias(hs_npu_local dst, hs_npu_local src, int n);

/* ------------------------------------------------------------------- cube */

/* CUBE: c (L0C, NZ ceil16(m) x ceil16(n)) = a (L0A, ZZ m x k) @ b (L0B,
 * ZN k x n), or += when accumulate. fp16 x fp16 or bf16 x bf16 -> fp32,
 * int8 x int8 -> int32; products are exact and summed in fp32 (int32).
 * Cost: lat_cube + ceil(m / cube_m) * ceil(k / kk) * ceil(n / cube_n),
 * kk = cube_k (2-byte inputs) or 2 * cube_k (int8). */
hs_status hs_npu_mmad(hs_npu_local c, hs_npu_local a, hs_npu_local b, int m, int k, int n, int accumulate);
/* CUBE: c = a @ b + bias broadcast over rows (bias: n fp32 in the bias
 * table; the accumulator starts from it). Cost as hs_npu_mmad. */
hs_status hs_npu_mmad_bias(hs_npu_local c, hs_npu_local a, hs_npu_local b, hs_npu_local bias, int m, int k, int n);

/* FIXPIPE: writes the top-left m x n of c (L0C, NZ with ceil16(m) rows,
 * fp32 or int32) to GM as ND rows (row stride gm_ld elements) of dtype
 * gm_dt: fp32 -> fp32 / fp16 / bf16 (round to nearest even), int32 ->
 * int32. Atomic add (hs_npu_set_atomic_add) adds instead of storing. Cost:
 *     lat_fixpipe + ceil(b_l2 / min(fixpipe_rate, W_l2) + b_hbm / min(fixpipe_rate, R_hbm)),
 * b = m * n * size(gm_dt). */
hs_status hs_npu_fixpipe(void *gm, int64_t gm_ld, hs_dtype gm_dt, hs_npu_local c, int m, int n);

/* ----------------------------------------------------------------- vector */

/* Vector ops work on UB views of n elements (views hold at least n) in
 * repeats of vector_bytes (256 B: 64 fp32 or 128 fp16/bf16 lanes):
 *     cost = lat_vector + mult * ceil(n * size / vector_bytes)
 * where size is the widest operand's element size and mult the op's
 * multiple below (1 unless said). Float ops take fp32, fp16 or bf16 with
 * all operands of one dtype; they compute in fp32 and round the result to
 * the dtype. dst may alias a source (same offset). */

typedef enum hs_npu_vop {
    /* binary: dst = a op b */
    HS_V_ADD, HS_V_SUB, HS_V_MUL,
    HS_V_DIV,           /* mult 2 */
    HS_V_MAX, HS_V_MIN,
    /* unary: dst = op(a) */
    HS_V_EXP, HS_V_LN, HS_V_SQRT, HS_V_RSQRT, HS_V_RECIP, /* mult 2 */
    HS_V_TANH,          /* composed as in Ascend C, 1 - 2 / (exp(2x) + 1): 6 ops, cost 6 lat + 8 repeats */
    HS_V_ABS, HS_V_RELU, HS_V_COPY,
    /* scalar operand: dst = a op s */
    HS_V_ADDS, HS_V_MULS, HS_V_MAXS, HS_V_MINS,
    HS_V_OP_COUNT
} hs_npu_vop;

/* Binary op (HS_V_ADD .. HS_V_MIN). */
hs_status hs_npu_vbin(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, hs_npu_local b, int64_t n);
/* Unary op (HS_V_EXP .. HS_V_COPY), computed as libm's expf, logf, ...
 * LN of x <= 0 gives -inf/NaN as logf. */
hs_status hs_npu_vunary(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, int64_t n);
/* Scalar-operand op (HS_V_ADDS .. HS_V_MINS). */
hs_status hs_npu_vscalar(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, float s, int64_t n);
/* Axpy: dst = dst + s * a. */
hs_status hs_npu_vaxpy(hs_npu_local dst, hs_npu_local a, float s, int64_t n);
/* Fused multiply-add (MulAddDst): dst = dst + a * b. */
hs_status hs_npu_vmla(hs_npu_local dst, hs_npu_local a, hs_npu_local b, int64_t n);
/* Duplicate: dst[i] = s. */
hs_status hs_npu_vdup(hs_npu_local dst, float s, int64_t n);
/* Broadcast of one UB element: dst[i] = a[0] (a: a view of >= 1 element). */
hs_status hs_npu_vbcast(hs_npu_local dst, hs_npu_local a, int64_t n);

/* Cast dst[i] = (dst.dtype) a[i] between fp32, fp16, bf16 and int32
 * (float -> narrower float: round to nearest even; float -> int32: round
 * to nearest, ties to even, saturating; int32 -> float: as C). Size in the
 * cost: the wider of the two. */
hs_status hs_npu_vcast(hs_npu_local dst, hs_npu_local a, int64_t n);

/* Reductions to dst[0] (dtype of a; summed in fp32). Cost: a cascade of
 * levels, each lat_vector + ceil(elems * size / vector_bytes), where each
 * level leaves one partial per repeat, until one value remains. */
hs_status hs_npu_vreduce_sum(hs_npu_local dst, hs_npu_local a, int64_t n);
hs_status hs_npu_vreduce_max(hs_npu_local dst, hs_npu_local a, int64_t n);

typedef enum hs_npu_cmp { HS_CMP_LT, HS_CMP_LE, HS_CMP_GT, HS_CMP_GE, HS_CMP_EQ, HS_CMP_NE } hs_npu_cmp;

/* Compare: mask[i] = a[i] cmp b[i] (vcmp) or a[i] cmp s (vcmps), as int8
 * 1 / 0 (one byte per element, where the chip packs bits). */
hs_status hs_npu_vcmp(hs_npu_cmp cmp, hs_npu_local mask, hs_npu_local a, hs_npu_local b, int64_t n);
hs_status hs_npu_vcmps(hs_npu_cmp cmp, hs_npu_local mask, hs_npu_local a, float s, int64_t n);
/* Select: dst[i] = mask[i] ? a[i] : b[i]. */
hs_status hs_npu_vselect(hs_npu_local dst, hs_npu_local mask, hs_npu_local a, hs_npu_local b, int64_t n);

/* ----------------------------------------------------------------- scalar */

/* SCALAR: n scalar operations (loop and address bookkeeping) at
 * lat_scalar cycles each. */
hs_status hs_npu_scalar(hs_npu_core *c, int64_t n);
/* SCALAR: reads element i of a UB view as float (one scalar op). Returns 0
 * in estimate mode and in the census; on error returns 0 with the block's
 * status set. */
float hs_npu_get_value(hs_npu_local l, int64_t i);
/* SCALAR: writes element i of a UB view (one scalar op). */
hs_status hs_npu_set_value(hs_npu_local l, int64_t i, float v);

/* ----------------------------------------------------------------- launch */

typedef enum hs_npu_launch_kind {
    HS_NPU_LAUNCH_CUBE = 0, /* a block = one AIC and its AIVs */
    HS_NPU_LAUNCH_VECTOR    /* a block = one AIV */
} hs_npu_launch_kind;

/* One block of a launch (opaque). */
typedef struct hs_npu_kblock hs_npu_kblock;

typedef hs_status (*hs_npu_kernel_fn)(hs_npu_kblock *blk, void *args);

/* Blocks a launch of this kind may have: cube_cores for CUBE; for VECTOR
 * vector_cores (cube_cores on a unified-core chip). */
int hs_npu_max_blocks(const hs_npu *d, hs_npu_launch_kind kind);

/* Runs fn for blocks 0 .. block_dim - 1 (each twice, see the top of this
 * file) and advances stream s (NULL: the device's default stream) by
 *     launch_overhead_s + max over blocks of (last pipe free) / freq,
 * recording it as a "kernel" slice called `name` with args cube_util,
 * vector_util, hbm_bytes, l2_bytes, flops, and, while tracing, each core's
 * pipes as busy slices (intervals closer than a gap that doubles whenever a
 * pipe would pass 64 slices are merged). Fills the device's last-launch
 * stats. Errors: HS_ERR_INVALID_ARGUMENT (NULL d, name or fn; block_dim
 * outside 1 .. hs_npu_max_blocks, naming both), HS_ERR_OUT_OF_MEMORY,
 * or the first error of a block's kernel (the stream is then not advanced). */
hs_status hs_npu_launch(hs_npu *d, hs_npu_stream *s, const char *name, hs_npu_launch_kind kind, int block_dim,
                        hs_npu_kernel_fn fn, void *args);

/* Timing cache. A launch's simulated cost is a pure function of the
 * kernel, its launch shape and what its key holds: the sizes, dtypes and
 * flags that steer its instruction stream, and the geometry of its GM
 * operands as the L2 model sees it: each operand's offset inside a
 * 512-byte line, and, for operands whose lines overlap, how far apart
 * they are (in place, or sharing a line at an edge). Where in HBM the
 * operands are otherwise does not matter. Kernels whose cost depends on
 * data would take no key (none does: see hs_npu_copy_in_gather). Values
 * such as a learning rate must stay out of the key. */
#define HS_NPU_KEY_WORDS 64
#define HS_NPU_KEY_PTRS 12
typedef struct hs_npu_key {
    int len, nptr, overflow;
    int independent; /* the blocks never read or add to GM another block writes (set by the kernel) */
    int64_t w[HS_NPU_KEY_WORDS];
    uintptr_t lo[HS_NPU_KEY_PTRS], hi[HS_NPU_KEY_PTRS]; /* line ranges of the operands so far */
    uintptr_t ptr[HS_NPU_KEY_PTRS];
} hs_npu_key;

/* A GM operand of a key: its address (NULL allowed) and the bytes it spans
 * (from its first to one past its last element). */
typedef struct hs_npu_operand {
    const void *gm;
    int64_t bytes;
} hs_npu_operand;

/* An empty key. */
void hs_npu_key_init(hs_npu_key *k);
/* Appends an integer (a size, dtype, flag). */
void hs_npu_key_int(hs_npu_key *k, int64_t v);
/* Appends a GM operand's geometry. A key that overflows HS_NPU_KEY_WORDS
 * or HS_NPU_KEY_PTRS is not cached. */
void hs_npu_key_gm(hs_npu_key *k, hs_npu_operand op);
/* A key of operands ops[0..nops) and integers w[0..nw), in that order. */
void hs_npu_key_of(hs_npu_key *k, const hs_npu_operand *ops, int nops, const int64_t *w, int nw);
/* hs_npu_key_of with the counts taken from two arrays. */
#define HS_NPU_KEY_OF(k, ops, w)                                                                                       \
    hs_npu_key_of((k), (ops), (int)(sizeof(ops) / sizeof((ops)[0])), (w), (int)(sizeof(w) / sizeof((w)[0])))

/* hs_npu_launch with the timing cache: when the device has simulated this
 * kernel with an equal key before (and the cache is on, see
 * hs_npu_set_timing_cache), estimate mode replays the stored stats and
 * trace without running the kernel, and execute mode runs the blocks once
 * for their data only (no census, no L2 model; on the host's threads when
 * key->independent) and replays the timing.
 * key NULL: no caching. Errors as hs_npu_launch. */
hs_status hs_npu_launch_cached(hs_npu *d, hs_npu_stream *s, const char *name, hs_npu_launch_kind kind,
                               int block_dim, hs_npu_kernel_fn fn, void *args, const hs_npu_key *key);

int hs_npu_kblock_idx(const hs_npu_kblock *b);
int hs_npu_kblock_dim(const hs_npu_kblock *b);
/* The block's cube core; NULL in a VECTOR launch. On a unified-core chip
 * the same core as aiv(0). */
hs_npu_core *hs_npu_kblock_aic(hs_npu_kblock *b);
/* Vector cores of the block: VECTOR launch: 1; CUBE launch:
 * vector_cores / cube_cores (2 on 910B; 1 on a unified-core chip, where it
 * is the AIC itself). */
int hs_npu_kblock_aiv_count(const hs_npu_kblock *b);
/* Vector core i of the block (NULL outside 0 .. aiv_count - 1). */
hs_npu_core *hs_npu_kblock_aiv(hs_npu_kblock *b, int i);

#endif
