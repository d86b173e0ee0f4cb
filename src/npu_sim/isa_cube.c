/* The cube unit: mmad on fractals. L0A holds A (m x k) in ZZ, L0B holds
 * B (k x n) in ZN, L0C holds C (m x n) in NZ (layouts in isa.h).
 *
 *   C[i][j] (= or +=) sum_l A[i][l] * B[l][j]      (+ bias[j] when biased)
 *
 * fp16/bf16 products are exact in fp32 and summed in fp32 in order of l
 * onto the running value, so a K loop of mmads equals one fp32 sum;
 * int8 products sum in int32 (wrapping as the hardware does).
 * Cost: lat_cube + ceil(m / cube_m) * ceil(k / kk) * ceil(n / cube_n)
 * cycles, kk = cube_k for 2-byte inputs, 2 * cube_k for int8. */
#include "npu_sim/launch.h"

#include <stdlib.h>

/* Index of A(i, l) in ZZ (L0A). */
static inline int64_t zz_at(int64_t i, int64_t l, int64_t kp, int64_t c0)
{
    return ((i / 16) * (kp / c0) + l / c0) * 16 * c0 + (i % 16) * c0 + l % c0;
}

/* Index of B(l, j) in ZN (L0B). */
static inline int64_t zn_at(int64_t l, int64_t j, int64_t np, int64_t c0)
{
    return ((l / c0) * (np / 16) + j / 16) * 16 * c0 + (j % 16) * c0 + l % c0;
}

/* Index of C(i, j) in NZ with mp rows (L0C). */
static inline int64_t nz_at(int64_t i, int64_t j, int64_t mp)
{
    return ((j / 16) * mp + i) * 16 + j % 16;
}

/* Copies n floats, n <= 16; the full 16 as one fixed-size move (a
 * variable-size memcpy compiles to a slow `rep movs` here). */
static inline void copy16(float *dst, const void *src, int64_t n)
{
    if (n == 16)
        memcpy(dst, src, 64);
    else
        memcpy(dst, src, (size_t)n * 4);
}

/* Host scratch of the fp16/bf16 body, kept between calls (grows only). */
static _Thread_local float *scratch;
static _Thread_local size_t scratch_floats;

/* Decodes n 2-byte values of dtype dt to fp32. */
static void widen(float *dst, const uint8_t *src, hs_dtype dt, int64_t n)
{
    uint16_t h[256];
    memcpy(h, src, (size_t)n * 2);
    if (dt == HS_BF16)
        hs_convert_bf16_to_fp32(dst, h, (size_t)n);
    else
        hs_convert_fp16_to_fp32(dst, h, (size_t)n);
}

/* acc[m][n] += a[m][k] @ b[k][n]: for each row i and each l in order,
 * acc[i][:] += a[i][l] * b[l][:]. The product of two fp16 or bf16 values
 * is exact in fp32 (at most 22 significant bits), so a fused multiply-add
 * rounds exactly as a multiply and then an add: the AVX-512/AVX2 clones may
 * contract, and every clone still gives the same bits (bf16 products below
 * fp32's normal range, 2^-126, are the exception: there the FMA keeps bits
 * the separate multiply would flush). Columns go in blocks of 64 kept in
 * registers across the l loop. */
/* 16 floats; loaded and stored with memcpy (no alignment needed), as
 * macros so that no function passes one by value outside the clones. */
typedef float v16 __attribute__((vector_size(64)));
#define LD16(v, p) memcpy(&(v), (p), sizeof(v16))
#define ST16(p, v) memcpy((p), &(v), sizeof(v16))

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"),
               optimize("no-trapping-math", "fp-contract=fast"))) static void
gemm_rows(float *restrict acc, const float *restrict a, const float *restrict b, int64_t m, int64_t k, int64_t n)
{
    const int64_t full = n / 64 * 64;
    int64_t i = 0;
    for (; i + 2 <= m; i += 2) /* two rows x 64 columns: 8 independent accumulators */
        for (int64_t j0 = 0; j0 < full; j0 += 64) {
            float *c0 = acc + i * n + j0, *c1 = c0 + n;
            v16 t0, t1, t2, t3, u0, u1, u2, u3;
            LD16(t0, c0), LD16(t1, c0 + 16), LD16(t2, c0 + 32), LD16(t3, c0 + 48);
            LD16(u0, c1), LD16(u1, c1 + 16), LD16(u2, c1 + 32), LD16(u3, c1 + 48);
            const float *a0 = a + i * k, *a1 = a0 + k;
            for (int64_t l = 0; l < k; l++) {
                const float *br = b + l * n + j0;
                v16 b0, b1, b2, b3;
                LD16(b0, br), LD16(b1, br + 16), LD16(b2, br + 32), LD16(b3, br + 48);
                const float s = a0[l], r = a1[l];
                t0 += s * b0;
                t1 += s * b1;
                t2 += s * b2;
                t3 += s * b3;
                u0 += r * b0;
                u1 += r * b1;
                u2 += r * b2;
                u3 += r * b3;
            }
            ST16(c0, t0), ST16(c0 + 16, t1), ST16(c0 + 32, t2), ST16(c0 + 48, t3);
            ST16(c1, u0), ST16(c1 + 16, u1), ST16(c1 + 32, u2), ST16(c1 + 48, u3);
        }
    for (int64_t r = 0; r < m; r++) { /* the columns past the blocks, and an odd last row */
        const int64_t from = r < i ? full : 0;
        float *restrict cr = acc + r * n;
        for (int64_t l = 0; from < n && l < k; l++) {
            const float s = a[r * k + l];
            const float *restrict br = b + l * n;
#pragma omp simd
            for (int64_t j = from; j < n; j++)
                cr[j] += s * br[j];
        }
    }
}

/* Functional body for fp16/bf16: A decoded to fp32 rows [m][k], B to fp32
 * rows [k][n], C (or the bias, or 0) to fp32 rows [m][n]; then for each
 * output row and each l in order, C[i][:] += A[i][l] * B[l][:], so every
 * element is the same in-order fp32 sum as one dot product. */
static hs_status mmad_float(uint8_t *cm, const uint8_t *am, const uint8_t *bm, const uint8_t *bias, hs_dtype dt,
                            int64_t m, int64_t k, int64_t n, int accumulate)
{
    const int64_t c0 = hs_npu_c0(dt), mp = (m + 15) / 16 * 16, kp = (k + c0 - 1) / c0 * c0, np = (n + 15) / 16 * 16;
    const size_t need = (size_t)(m * k + k * n + m * n);
    if (need > scratch_floats) {
        float *p = realloc(scratch, need * sizeof *p);
        if (!p)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "mmad: %zu floats of scratch", need);
        scratch = p;
        scratch_floats = need;
    }
    float *a = scratch, *b = a + m * k, *acc = b + k * n, tile[16 * 16];
    for (int64_t ib = 0; ib < mp / 16; ib++) /* ZZ: fractal (ib, lb) holds rows ib*16.. of c0 columns each */
        for (int64_t lb = 0; lb < kp / c0; lb++) {
            widen(tile, am + 2 * (ib * (kp / c0) + lb) * 16 * c0, dt, 16 * c0);
            const int64_t rows = m - ib * 16 < 16 ? m - ib * 16 : 16, cols = k - lb * c0 < c0 ? k - lb * c0 : c0;
            for (int64_t ii = 0; ii < rows; ii++)
                copy16(a + (ib * 16 + ii) * k + lb * c0, tile + ii * c0, cols);
        }
    for (int64_t lb = 0; lb < kp / c0; lb++) /* ZN: fractal (lb, jb) holds columns jb*16.. of c0 rows each */
        for (int64_t jb = 0; jb < np / 16; jb++) {
            widen(tile, bm + 2 * (lb * (np / 16) + jb) * 16 * c0, dt, 16 * c0);
            const int64_t rows = k - lb * c0 < c0 ? k - lb * c0 : c0, cols = n - jb * 16 < 16 ? n - jb * 16 : 16;
            for (int64_t ll = 0; ll < rows; ll++) {
                float *dst = b + (lb * c0 + ll) * n + jb * 16;
                for (int64_t jj = 0; jj < cols; jj++)
                    dst[jj] = tile[jj * c0 + ll];
            }
        }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j0 = 0; j0 < n; j0 += 16) { /* NZ: 16 contiguous columns per row */
            const int64_t run = n - j0 < 16 ? n - j0 : 16;
            float *dst = acc + i * n + j0;
            if (accumulate)
                copy16(dst, cm + 4 * nz_at(i, j0, mp), run);
            else if (bias)
                copy16(dst, bias + 4 * j0, run);
            else
                memset(dst, 0, (size_t)run * 4);
        }
    gemm_rows(acc, a, b, m, k, n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j0 = 0; j0 < n; j0 += 16)
            copy16((float *)(void *)(cm + 4 * nz_at(i, j0, mp)), acc + i * n + j0, n - j0 < 16 ? n - j0 : 16);
    return HS_OK;
}

/* Functional body for int8 -> int32. */
static void mmad_int8(uint8_t *cm, const uint8_t *am, const uint8_t *bm, int64_t m, int64_t k, int64_t n,
                      int accumulate)
{
    const int64_t c0 = 32, mp = (m + 15) / 16 * 16, kp = (k + c0 - 1) / c0 * c0, np = (n + 15) / 16 * 16;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t s = 0;
            uint8_t *out = cm + 4 * nz_at(i, j, mp);
            if (accumulate)
                memcpy(&s, out, 4);
            uint32_t u = (uint32_t)s;
            for (int64_t l = 0; l < k; l++)
                u += (uint32_t)((int32_t)(int8_t)am[zz_at(i, l, kp, c0)] * (int32_t)(int8_t)bm[zn_at(l, j, np, c0)]);
            s = (int32_t)u;
            memcpy(out, &s, 4);
        }
}

/* Checks, costs and runs one mmad (bias: a bias-table view or NULL). */
static hs_status mmad(const char *op, hs_npu_local c_acc, hs_npu_local a, hs_npu_local b, const hs_npu_local *bias,
                      int m, int k, int n, int accumulate)
{
    hs_npu_core *c = c_acc.core;
    HS_NPU_ENTER(op, c);
    const hs_dtype acc_dt = a.dtype == HS_INT8 ? HS_INT32 : HS_FP32;
    if (!(a.dtype == HS_FP16 || a.dtype == HS_BF16 || a.dtype == HS_INT8) || b.dtype != a.dtype ||
        c_acc.dtype != acc_dt || (bias && (acc_dt != HS_FP32 || bias->dtype != HS_FP32)))
        return hs_npu_fail(c, HS_ERR_DTYPE,
                           "%s: %s x %s -> %s (fp16 x fp16 or bf16 x bf16 -> fp32, int8 x int8 -> int32; bias fp32)",
                           op, hs_dtype_name(a.dtype), hs_dtype_name(b.dtype), hs_dtype_name(c_acc.dtype));
    if (m <= 0 || k <= 0 || n <= 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: m=%d k=%d n=%d", op, m, k, n);
    const int64_t c0 = hs_npu_c0(a.dtype), mp = (m + 15) / 16 * 16, kp = (k + c0 - 1) / c0 * c0,
                  np = (n + 15) / 16 * 16;
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, a, HS_BUF_L0A, mp * kp));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, b, HS_BUF_L0B, kp * np));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, c_acc, HS_BUF_L0C, mp * np));
    if (bias)
        HS_NPU_CHECK(c, hs_npu_check_view(op, c, *bias, HS_BUF_BT, n));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const int64_t kk = a.dtype == HS_INT8 ? 2 * s->cube_k : s->cube_k;
    const uint64_t cost = (uint64_t)s->lat_cube + (uint64_t)(hs_npu_ceil_div(m, s->cube_m) * hs_npu_ceil_div(k, kk) *
                                                             hs_npu_ceil_div(n, s->cube_n));
    hs_npu_local rd[4] = {a, b};
    int nrd = 2;
    if (accumulate)
        rd[nrd++] = c_acc;
    if (bias)
        rd[nrd++] = *bias;
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_CUBE, cost, rd, nrd, &c_acc, 1));
    if (!c->blk->census)
        c->flops += 2.0 * m * k * n;
    uint8_t *cm = hs_npu_view_mem(c_acc);
    if (!cm)
        return HS_OK;
    const uint8_t *am = hs_npu_view_mem(a), *bm = hs_npu_view_mem(b);
    if (a.dtype == HS_INT8) {
        mmad_int8(cm, am, bm, m, k, n, accumulate);
        return HS_OK;
    }
    hs_status st = mmad_float(cm, am, bm, bias ? hs_npu_view_mem(*bias) : NULL, a.dtype, m, k, n, accumulate);
    return st == HS_OK ? HS_OK : hs_npu_fail(c, st, "%s: out of host memory", op);
}

/* mmad without bias: c = a @ b, or c += a @ b. */
hs_status hs_npu_mmad(hs_npu_local c, hs_npu_local a, hs_npu_local b, int m, int k, int n, int accumulate)
{
    return mmad("mmad", c, a, b, NULL, m, k, n, accumulate != 0);
}

/* mmad starting from the bias table: c = a @ b + bias. */
hs_status hs_npu_mmad_bias(hs_npu_local c, hs_npu_local a, hs_npu_local b, hs_npu_local bias, int m, int k, int n)
{
    return mmad("mmad_bias", c, a, b, &bias, m, k, n, 0);
}
