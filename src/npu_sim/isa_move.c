/* Data movement instructions: MTE2 (GM -> L1/UB, with nd2nz), MTE1
 * (L1 -> L0A/L0B/bias table, load2d into the ZZ/ZN fractal layouts),
 * FIXPIPE (L0C NZ -> GM ND with dtype conversion) and MTE3 (UB -> GM), and
 * the GM cost they share. Layout formulas are in isa.h. */
#include "npu_sim/launch.h"

/* 1 when v is a multiple of m. */
static int multiple(int64_t v, int64_t m)
{
    return v % m == 0;
}

/* v rounded up to a multiple of m. */
static int64_t round_up(int64_t v, int64_t m)
{
    return hs_npu_ceil_div(v, m) * m;
}

/* Elements per fractal row: 32 bytes / size (16 for 4-byte types). */
int hs_npu_c0(hs_dtype dt)
{
    const int es = (int)hs_dtype_size(dt);
    return es == 4 ? 16 : es ? 32 / es : 0;
}

/* Validates a GM range (inside one live allocation), accounts it in the
 * L2 model and returns its transfer cycles (see isa.h for the rates). */
hs_status hs_npu_gm_access(const char *op, hs_npu_core *c, hs_npu_pipe p, hs_gm_kind kind, const void *gm,
                           int64_t rows, int64_t row_bytes, int64_t ld_bytes, double cap, uint64_t *cycles)
{
    const int write = kind == HS_GM_WRITE || kind == HS_GM_SCATTER;
    struct hs_npu_kblock *b = c->blk;
    if (!gm || rows <= 0 || row_bytes <= 0 || ld_bytes < row_bytes)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: GM %p, %lld rows of %lld bytes, stride %lld", op, gm,
                           (long long)rows, (long long)row_bytes, (long long)ld_bytes);
    const int64_t span = (rows - 1) * ld_bytes + row_bytes;
    const uintptr_t base = hs_npu_range_base(b->dev, gm, (size_t)span);
    if (!base)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT,
                           "%s: GM range [%p, +%lld B) is not inside one live allocation of the device", op, gm,
                           (long long)span);
    if (!b->timed && !b->census) { /* data-only pass: the cost comes from the timing cache */
        *cycles = 0;
        return HS_OK;
    }
    const double bytes = (double)(rows * row_bytes);
    /* the census discards costs; a gather is a first read from HBM, a
     * scatter is absorbed by L2 and written back in full */
    hs_npu_gm_split s = kind == HS_GM_SCATTER ? (hs_npu_gm_split){0, bytes, bytes} : (hs_npu_gm_split){bytes, 0, bytes};
    if (kind != HS_GM_GATHER && kind != HS_GM_SCATTER) {
        hs_status st = hs_npu_l2_access(b->l2, b->idx, b->census, write, c->free_at[p], base, (uintptr_t)gm,
                                        rows, row_bytes, ld_bytes, &s);
        if (st != HS_OK)
            return hs_npu_fail(c, st, "%s: %s", op, hs_last_error());
        if (b->census)
            s = (hs_npu_gm_split){bytes, 0, bytes};
    }
    const double r_hbm = write && cap < b->r_hbm ? cap : b->r_hbm;
    const double r_l2 = write ? (cap < b->w_l2 ? cap : b->w_l2) : b->r_l2;
    *cycles = (uint64_t)ceil(s.hbm / r_hbm + s.l2 / r_l2 - 1e-9);
    if (!b->census) {
        b->hbm_bytes += write ? s.writeback : s.hbm;
        b->l2_bytes += s.l2;
    }
    return HS_OK;
}

/* Checks a row copy's shape: rows, cols >= 1, ld >= cols. */
static hs_status check_rows(const char *op, hs_npu_core *c, int64_t ld, int64_t gm_ld, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0 || ld < cols || gm_ld < cols)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: %lld x %lld with strides %lld (local), %lld (GM)", op,
                           (long long)rows, (long long)cols, (long long)ld, (long long)gm_ld);
    return HS_OK;
}

/* MTE2 ND copy GM -> L1/UB: lat_mte2 + GM transfer cycles. */
static hs_status copy_in(const char *op, hs_gm_kind kind, hs_npu_local dst, int64_t dst_ld, const void *gm,
                         int64_t gm_ld, int64_t rows, int64_t cols)
{
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    HS_NPU_CHECK(c, check_rows(op, c, dst_ld, gm_ld, rows, cols));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, dst, HS_BUF_COUNT, (rows - 1) * dst_ld + cols));
    if (c->allocs[dst.alloc].buf != HS_BUF_L1 && c->allocs[dst.alloc].buf != HS_BUF_UB)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: destination in %s (L1 or UB)", op,
                           hs_npu_buf_name(c->allocs[dst.alloc].buf));
    const int64_t es = (int64_t)hs_dtype_size(dst.dtype);
    uint64_t cycles;
    HS_NPU_CHECK(c, hs_npu_gm_access(op, c, HS_PIPE_MTE2, kind, gm, rows, cols * es, gm_ld * es, 0, &cycles));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_MTE2, (uint64_t)c->blk->dev->spec.lat_mte2 + cycles, NULL, 0, &dst, 1));
    uint8_t *m = hs_npu_view_mem(dst);
    if (m)
        for (int64_t r = 0; r < rows; r++)
            memcpy(m + r * dst_ld * es, (const uint8_t *)gm + r * gm_ld * es, (size_t)(cols * es));
    return HS_OK;
}

hs_status hs_npu_copy_in(hs_npu_local dst, int64_t dst_ld, const void *gm, int64_t gm_ld, int64_t rows, int64_t cols)
{
    return copy_in("copy_in", HS_GM_READ, dst, dst_ld, gm, gm_ld, rows, cols);
}

hs_status hs_npu_copy_in_gather(hs_npu_local dst, int64_t dst_ld, const void *gm, int64_t gm_ld, int64_t rows,
                                int64_t cols)
{
    return copy_in("copy_in_gather", HS_GM_GATHER, dst, dst_ld, gm, gm_ld, rows, cols);
}

/* Writes n elements of dtype dt from src to GM dst, or adds them when
 * atomic (fp32/fp16/bf16 through fp32 with rounding; int32 exactly). */
static void store_gm(uint8_t *dst, const uint8_t *src, hs_dtype dt, int64_t n, int atomic)
{
    if (!atomic) {
        memcpy(dst, src, (size_t)(n * (int64_t)hs_dtype_size(dt)));
        return;
    }
    if (dt == HS_FP32) {
        for (int64_t i = 0; i < n; i++) {
            float a, b;
            memcpy(&a, dst + 4 * i, 4);
            memcpy(&b, src + 4 * i, 4);
            a += b;
            memcpy(dst + 4 * i, &a, 4);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        if (dt == HS_INT32) {
            int32_t a, b;
            memcpy(&a, dst + 4 * i, 4);
            memcpy(&b, src + 4 * i, 4);
            a = (int32_t)((uint32_t)a + (uint32_t)b);
            memcpy(dst + 4 * i, &a, 4);
        } else
            hs_npu_st(dst, dt, i, hs_npu_ld(dst, dt, i) + hs_npu_ld(src, dt, i));
    }
}

/* Atomic add is defined for these GM dtypes. */
static int atomic_ok(hs_dtype dt)
{
    return dt == HS_FP32 || dt == HS_FP16 || dt == HS_BF16 || dt == HS_INT32;
}

/* MTE3 ND copy UB -> GM: lat_mte3 + GM write cycles capped at ub_to_l2_rate. */
static hs_status copy_out(const char *op, hs_gm_kind kind, void *gm, int64_t gm_ld, hs_npu_local src, int64_t src_ld,
                          int64_t rows, int64_t cols)
{
    hs_npu_core *c = src.core;
    HS_NPU_ENTER(op, c);
    HS_NPU_CHECK(c, check_rows(op, c, src_ld, gm_ld, rows, cols));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, src, HS_BUF_UB, (rows - 1) * src_ld + cols));
    if (c->atomic_add && !atomic_ok(src.dtype))
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: atomic add of %s", op, hs_dtype_name(src.dtype));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const int64_t es = (int64_t)hs_dtype_size(src.dtype);
    uint64_t cycles;
    HS_NPU_CHECK(c, hs_npu_gm_access(op, c, HS_PIPE_MTE3, kind, gm, rows, cols * es, gm_ld * es, s->ub_to_l2_rate,
                                     &cycles));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_MTE3, (uint64_t)s->lat_mte3 + cycles, &src, 1, NULL, 0));
    const uint8_t *m = hs_npu_view_mem(src);
    if (m)
        for (int64_t r = 0; r < rows; r++)
            store_gm((uint8_t *)gm + r * gm_ld * es, m + r * src_ld * es, src.dtype, cols, c->atomic_add);
    return HS_OK;
}

hs_status hs_npu_copy_out(void *gm, int64_t gm_ld, hs_npu_local src, int64_t src_ld, int64_t rows, int64_t cols)
{
    return copy_out("copy_out", HS_GM_WRITE, gm, gm_ld, src, src_ld, rows, cols);
}

hs_status hs_npu_copy_out_scatter(void *gm, int64_t gm_ld, hs_npu_local src, int64_t src_ld, int64_t rows,
                                  int64_t cols)
{
    return copy_out("copy_out_scatter", HS_GM_SCATTER, gm, gm_ld, src, src_ld, rows, cols);
}

/* Switches atomic add of c's MTE3 and FIXPIPE writes. */
void hs_npu_set_atomic_add(hs_npu_core *c, int on)
{
    c->atomic_add = on != 0;
}

/* fp16, bf16 or int8: the dtypes of cube operands. */
static int cube_dtype(hs_dtype dt)
{
    return dt == HS_FP16 || dt == HS_BF16 || dt == HS_INT8;
}

/* MTE2 nd2nz: ND tile -> L1 NZ (zero padded); cost as copy_in. */
hs_status hs_npu_copy_nd2nz(hs_npu_local dst, const void *gm, int64_t gm_ld, int rows, int cols)
{
    static const char op[] = "copy_nd2nz";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    if (!cube_dtype(dst.dtype))
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: %s (fp16, bf16 or int8)", op, hs_dtype_name(dst.dtype));
    HS_NPU_CHECK(c, check_rows(op, c, cols, gm_ld, rows, cols));
    const int64_t c0 = hs_npu_c0(dst.dtype), rp = round_up(rows, 16), cp = round_up(cols, c0);
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, dst, HS_BUF_L1, rp * cp));
    const int64_t es = (int64_t)hs_dtype_size(dst.dtype);
    uint64_t cycles;
    HS_NPU_CHECK(c, hs_npu_gm_access(op, c, HS_PIPE_MTE2, HS_GM_READ, gm, rows, cols * es, gm_ld * es, 0, &cycles));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_MTE2, (uint64_t)c->blk->dev->spec.lat_mte2 + cycles, NULL, 0, &dst, 1));
    uint8_t *m = hs_npu_view_mem(dst);
    if (!m)
        return HS_OK;
    memset(m, 0, (size_t)(rp * cp * es));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j0 = 0; j0 < cols; j0 += c0) {
            const int64_t w = cols - j0 < c0 ? cols - j0 : c0;
            memcpy(m + ((j0 / c0) * rp + r) * c0 * es, (const uint8_t *)gm + (r * gm_ld + j0) * es, (size_t)(w * es));
        }
    return HS_OK;
}

/* The source block of a load2d: S[row0 : row0 + rows, col0 : col0 + cols]
 * of an NZ matrix with src_rows rows must lie inside the view, fractal
 * aligned. */
static hs_status check_load_src(const char *op, hs_npu_core *c, hs_npu_local src, int src_rows, int row0, int col0,
                                int rows, int cols)
{
    const int64_t c0 = hs_npu_c0(src.dtype);
    if (rows <= 0 || cols <= 0 || src_rows <= 0 || row0 < 0 || col0 < 0 || !multiple(src_rows, 16) ||
        !multiple(row0, 16) || !multiple(col0, c0) || row0 + round_up(rows, 16) > src_rows)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT,
                           "%s: block %d x %d at (%d, %d) of an NZ matrix of %d rows (rows multiple of 16, "
                           "row0 of 16, col0 of %lld, inside)",
                           op, rows, cols, row0, col0, src_rows, (long long)c0);
    return hs_npu_check_view(op, c, src, HS_BUF_L1, (col0 + round_up(cols, c0)) / c0 * src_rows * c0);
}

/* Index of S(r, col) in an NZ matrix of R rows with c0-column blocks. */
static inline int64_t nz_at(int64_t r, int64_t col, int64_t R, int64_t c0)
{
    return ((col / c0) * R + r) * c0 + col % c0;
}

/* Copies w elements of es bytes to d from s, s's elements `stride`
 * elements apart (1: one contiguous run). */
static void copy_run(uint8_t *d, const uint8_t *s, int64_t w, int64_t stride, int64_t es)
{
    if (stride == 1)
        memcpy(d, s, (size_t)(w * es));
    else if (es == 2)
        for (int64_t x = 0; x < w; x++)
            memcpy(d + 2 * x, s + 2 * x * stride, 2);
    else
        for (int64_t x = 0; x < w; x++)
            d[x] = s[x * stride];
}

/* Shared part of the two load2d: checks, cost
 * lat_mte1 + ceil(dst bytes / l1_to_l0_rate), issue. */
static hs_status load2d_issue(const char *op, hs_npu_core *c, hs_npu_local dst, hs_npu_local src, hs_npu_buf buf,
                              int64_t dst_elems, int transposed_fractals)
{
    if (!cube_dtype(src.dtype) || dst.dtype != src.dtype)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: %s from %s (same dtype, fp16, bf16 or int8)", op,
                           hs_dtype_name(dst.dtype), hs_dtype_name(src.dtype));
    if (transposed_fractals && src.dtype == HS_INT8)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: int8 fractals (16 x 32) cannot be transposed", op);
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, dst, buf, dst_elems));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const int64_t bytes = dst_elems * (int64_t)hs_dtype_size(dst.dtype);
    const uint64_t cost = (uint64_t)s->lat_mte1 + (uint64_t)ceil((double)bytes / s->l1_to_l0_rate - 1e-9);
    return hs_npu_issue(op, c, HS_PIPE_MTE1, cost, &src, 1, &dst, 1);
}

/* MTE1 load2d L1 NZ -> L0A ZZ (optionally transposing fractals). */
hs_status hs_npu_load_l0a(hs_npu_local dst, hs_npu_local src, int src_rows, int row0, int col0, int m, int k,
                          int transposed)
{
    static const char op[] = "load_l0a";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    HS_NPU_CHECK(c, transposed ? check_load_src(op, c, src, src_rows, row0, col0, k, m)
                     : check_load_src(op, c, src, src_rows, row0, col0, m, k));
    const int64_t c0 = hs_npu_c0(src.dtype), mp = round_up(m, 16), kp = round_up(k, c0);
    HS_NPU_CHECK(c, load2d_issue(op, c, dst, src, HS_BUF_L0A, mp * kp, transposed));
    uint8_t *d = hs_npu_view_mem(dst);
    const uint8_t *sm = hs_npu_view_mem(src);
    if (!d)
        return HS_OK;
    const int64_t es = (int64_t)hs_dtype_size(src.dtype);
    memset(d, 0, (size_t)(mp * kp * es));
    for (int64_t i = 0; i < m; i++) /* ZZ rows hold c0 consecutive columns of A */
        for (int64_t j0 = 0; j0 < k; j0 += c0) {
            const int64_t zz = ((i / 16) * (kp / c0) + j0 / c0) * 16 * c0 + (i % 16) * c0;
            const int64_t at =
                transposed ? nz_at(row0 + j0, col0 + i, src_rows, c0) : nz_at(row0 + i, col0 + j0, src_rows, c0);
            copy_run(d + zz * es, sm + at * es, k - j0 < c0 ? k - j0 : c0, transposed ? c0 : 1, es);
        }
    return HS_OK;
}

/* MTE1 load2d L1 NZ -> L0B ZN (optionally transposing fractals). */
hs_status hs_npu_load_l0b(hs_npu_local dst, hs_npu_local src, int src_rows, int row0, int col0, int k, int n,
                          int transposed)
{
    static const char op[] = "load_l0b";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    HS_NPU_CHECK(c, transposed ? check_load_src(op, c, src, src_rows, row0, col0, n, k)
                     : check_load_src(op, c, src, src_rows, row0, col0, k, n));
    const int64_t c0 = hs_npu_c0(src.dtype), kp = round_up(k, c0), np = round_up(n, 16);
    HS_NPU_CHECK(c, load2d_issue(op, c, dst, src, HS_BUF_L0B, kp * np, !transposed));
    uint8_t *d = hs_npu_view_mem(dst);
    const uint8_t *sm = hs_npu_view_mem(src);
    if (!d)
        return HS_OK;
    const int64_t es = (int64_t)hs_dtype_size(src.dtype);
    memset(d, 0, (size_t)(kp * np * es));
    for (int64_t j = 0; j < n; j++) /* ZN rows hold c0 consecutive rows (k) of one column of B */
        for (int64_t i0 = 0; i0 < k; i0 += c0) {
            const int64_t zn = ((i0 / c0) * (np / 16) + j / 16) * 16 * c0 + (j % 16) * c0;
            const int64_t at =
                transposed ? nz_at(row0 + j, col0 + i0, src_rows, c0) : nz_at(row0 + i0, col0 + j, src_rows, c0);
            copy_run(d + zn * es, sm + at * es, k - i0 < c0 ? k - i0 : c0, transposed ? 1 : c0, es);
        }
    return HS_OK;
}

/* MTE1 L1 -> bias table, n fp32: lat_mte1 + ceil(4 n / l1_to_l0_rate). */
hs_status hs_npu_load_bias(hs_npu_local dst, hs_npu_local src, int n)
{
    static const char op[] = "load_bias";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    if (dst.dtype != HS_FP32 || src.dtype != HS_FP32)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: fp32 only", op);
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, dst, HS_BUF_BT, n));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, src, HS_BUF_L1, n));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const uint64_t cost = (uint64_t)s->lat_mte1 + (uint64_t)ceil(4.0 * n / s->l1_to_l0_rate - 1e-9);
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_MTE1, cost, &src, 1, &dst, 1));
    uint8_t *d = hs_npu_view_mem(dst);
    if (d)
        memcpy(d, hs_npu_view_mem(src), (size_t)n * 4);
    return HS_OK;
}

/* FIXPIPE L0C NZ -> GM ND with conversion: lat_fixpipe + GM write cycles
 * capped at fixpipe_rate. */
hs_status hs_npu_fixpipe(void *gm, int64_t gm_ld, hs_dtype gm_dt, hs_npu_local c_acc, int m, int n)
{
    static const char op[] = "fixpipe";
    hs_npu_core *c = c_acc.core;
    HS_NPU_ENTER(op, c);
    const int ok = c_acc.dtype == HS_FP32 ? gm_dt == HS_FP32 || gm_dt == HS_FP16 || gm_dt == HS_BF16
                                          : c_acc.dtype == HS_INT32 && gm_dt == HS_INT32;
    if (!ok)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: %s accumulator to %s GM (fp32 -> fp32/fp16/bf16, int32 -> int32)", op,
                           hs_dtype_name(c_acc.dtype), hs_dtype_name(gm_dt));
    if (m <= 0 || n <= 0 || gm_ld < n)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: %d x %d, GM stride %lld", op, m, n, (long long)gm_ld);
    const int64_t mp = round_up(m, 16);
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, c_acc, HS_BUF_L0C, mp * round_up(n, 16)));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const int64_t es = (int64_t)hs_dtype_size(gm_dt);
    uint64_t cycles;
    HS_NPU_CHECK(c, hs_npu_gm_access(op, c, HS_PIPE_FIXPIPE, HS_GM_WRITE, gm, m, n * es, gm_ld * es, s->fixpipe_rate, &cycles));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_FIXPIPE, (uint64_t)s->lat_fixpipe + cycles, &c_acc, 1, NULL, 0));
    const uint8_t *acc = hs_npu_view_mem(c_acc);
    if (!acc)
        return HS_OK;
    float run[16];
    uint16_t half[16];
    for (int64_t i = 0; i < m; i++) /* NZ: 16 contiguous columns of row i per column block */
        for (int64_t j0 = 0; j0 < n; j0 += 16) {
            const int64_t w = n - j0 < 16 ? n - j0 : 16;
            const uint8_t *src = acc + ((j0 / 16) * mp + i) * 16 * 4;
            uint8_t *g = (uint8_t *)gm + (i * gm_ld + j0) * es;
            if (gm_dt == HS_INT32 || gm_dt == HS_FP32) {
                store_gm(g, src, gm_dt, w, c->atomic_add);
                continue;
            }
            memcpy(run, src, (size_t)w * 4);
            if (gm_dt == HS_BF16)
                hs_convert_fp32_to_bf16(half, run, (size_t)w);
            else
                hs_convert_fp32_to_fp16(half, run, (size_t)w);
            store_gm(g, (const uint8_t *)half, gm_dt, w, c->atomic_add);
        }
    return HS_OK;
}
