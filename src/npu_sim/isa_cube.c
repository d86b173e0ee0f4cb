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
#include "npu_sim/mmad_f32_fns.h"
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

/* Host scratch of the fp16/bf16 body, kept between calls (grows only). */
static _Thread_local float *scratch;
static _Thread_local size_t scratch_floats;

/* mmad's fp32 kernel of the level in use (mmad_f32.h). */
static hs_npu_mmad_f32_fn *mmad_f32_for(hs_isa isa)
{
    switch (isa) {
    case HS_ISA_AVX512: return hs_npu_mmad_f32_avx512;
    case HS_ISA_AVX2: return hs_npu_mmad_f32_avx2;
    default: return hs_npu_mmad_f32_baseline;
    }
}

/* Functional body for fp16/bf16: A (ZZ) widened to fp32 in place of its
 * layout, each ZN fractal of B (16 columns x 16 values of l) transposed and
 * widened into bt[jb][l][16], then the level's kernel sums every element
 * of C in order of l, in L0C's NZ layout (mmad_f32.h). */
static hs_status mmad_float(uint8_t *cm, const uint8_t *am, const uint8_t *bm, const uint8_t *bias, hs_dtype dt,
                            int64_t m, int64_t k, int64_t n, int accumulate)
{
    const int64_t c0 = hs_npu_c0(dt), mp = (m + 15) / 16 * 16, kp = (k + c0 - 1) / c0 * c0, np = (n + 15) / 16 * 16;
    const size_t need = (size_t)(mp * kp + k * np + 16 * c0);
    if (need > scratch_floats) {
        float *p = realloc(scratch, need * sizeof *p);
        if (!p)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "mmad: %zu floats of scratch", need);
        scratch = p;
        scratch_floats = need;
    }
    float *a = scratch, *bt = a + mp * kp, *tile = bt + k * np;
    if (dt == HS_BF16) /* all of A's fractals, padding included: one bulk conversion */
        hs_convert_bf16_to_fp32(a, (const uint16_t *)(const void *)am, (size_t)(mp * kp));
    else
        hs_convert_fp16_to_fp32(a, (const uint16_t *)(const void *)am, (size_t)(mp * kp));
    for (int64_t lb = 0; lb < kp / c0; lb++) /* ZN: fractal (lb, jb) holds tile[jj][ll] = B(lb*c0 + ll, jb*16 + jj) */
        for (int64_t jb = 0; jb < np / 16; jb++) {
            const uint16_t *f = (const uint16_t *)(const void *)(bm + 2 * (lb * (np / 16) + jb) * 16 * c0);
            if (dt == HS_BF16)
                hs_convert_bf16_to_fp32(tile, f, (size_t)(16 * c0));
            else
                hs_convert_fp16_to_fp32(tile, f, (size_t)(16 * c0));
            const int64_t rows = k - lb * c0 < c0 ? k - lb * c0 : c0, cols = n - jb * 16;
            for (int64_t ll = 0; ll < rows; ll++) {
                float *dst = bt + (jb * k + lb * c0 + ll) * 16;
                for (int64_t jj = 0; jj < 16; jj++)
                    dst[jj] = jj < cols ? tile[jj * c0 + ll] : 0.0f;
            }
        }
    mmad_f32_for(hs_cpu_isa())((float *)(void *)cm, a, bt, (const float *)(const void *)bias, accumulate, m, k, n,
                               mp, kp);
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
