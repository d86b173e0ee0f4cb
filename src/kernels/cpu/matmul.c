/* Matmul on the CPU: the products go to OpenBLAS sgemm, row-major, run by
 * hyperspeed's OpenMP team (hs_cpu_sgemm).
 *
 * Debian's OpenBLAS 0.3.21 is built without cblas_sbgemm, so bf16 operands
 * are widened to fp32 a tile of rows at a time into a per-thread scratch
 * and multiplied by sgemm. A product of two bf16 values is exact in fp32,
 * so this is the fp32 accumulation sbgemm would do.
 */
#include "kernels/cpu/dense.h"

#include <string.h>

/* Rows of a bf16 operand widened per sgemm call. It splits the reduction
 * dimension in the backward, so it is a constant: the summation order must
 * not depend on anything but the shapes. */
#define TILE_ROWS 512

static _Thread_local hs_scratch widened;

static void widen(float *dst, const uint16_t *src, int64_t n)
{
    const int64_t blk = 1 << 14;
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += blk)
        hs_convert_bf16_to_fp32(dst + i, src + i, (size_t)(n - i < blk ? n - i : blk));
}

/* out[n,:] = bias, so that sgemm with beta = 1 adds the product to it. */
static void fill_rows(float *out, const float *bias, int64_t N, int64_t OC)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(N * OC))
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * OC, bias, (size_t)OC * sizeof(float));
}

/* dbias[o] += sum_n dout[n,o]. Each thread owns a slice of the channels
 * and adds the rows in order, so the sums do not depend on the threads. */
static void bias_grad(float *dbias, const float *dout, int64_t N, int64_t OC)
{
#pragma omp parallel num_threads(hs_cpu_threads(N * OC))
    {
        int64_t c0, c1;
        hs_cpu_channels(OC, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int64_t n = 0; n < N; n++) {
            const float *row = dout + n * OC;
#pragma omp simd
            for (int64_t o = c0; o < c1; o++)
                dbias[o] += row[o];
        }
    }
}

/* One thread pool: OpenBLAS's own (pthreads) workers and libgomp's spin-wait
 * for each other's cores between calls, which halved the speed of a
 * training step on 2 cores. So each thread of the OpenMP team runs a
 * single-threaded sgemm (OpenBLAS set to 1 thread) on a slice of the larger
 * output dimension; the operand every thread packs is then the smaller one. */
void hs_cpu_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const int nt = M * N * K < (1 << 18) ? 1 : hs_num_threads();
#pragma omp parallel num_threads(nt)
    {
        int64_t s0, s1;
        hs_cpu_channels(M >= N ? M : N, omp_get_thread_num(), omp_get_num_threads(), &s0, &s1);
        if (s1 > s0 && M >= N)
            cblas_sgemm(CblasRowMajor, ta, tb, (int)(s1 - s0), (int)N, (int)K, 1.0f,
                        ta == CblasNoTrans ? a + s0 * lda : a + s0, (int)lda, b, (int)ldb, beta, c + s0 * ldc,
                        (int)ldc);
        else if (s1 > s0)
            cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)(s1 - s0), (int)K, 1.0f, a, (int)lda,
                        tb == CblasNoTrans ? b + s0 : b + s0 * ldb, (int)ldb, beta, c + s0, (int)ldc);
    }
}

/* c[M,Cn] += op(a)[M,K] @ b[K,Cn] with b bf16 and a fp32 (lda columns;
 * op(a) = a or a^T): widens b TILE_ROWS rows at a time and lets sgemm add
 * each slice of the reduction into c. */
static hs_status gemm_widen_b(float *c, const float *a, enum CBLAS_TRANSPOSE ta, int64_t lda, const uint16_t *b,
                              int64_t M, int64_t K, int64_t Cn)
{
    const int64_t rows = K < TILE_ROWS ? K : TILE_ROWS;
    float *bt = hs_scratch_get(&widened, (size_t)(rows * Cn) * sizeof(float));
    if (!bt)
        return HS_ERR_OUT_OF_MEMORY;
    for (int64_t k0 = 0; k0 < K; k0 += rows) {
        const int64_t k = K - k0 < rows ? K - k0 : rows;
        widen(bt, b + k0 * Cn, k * Cn);
        const float *ak = ta == CblasNoTrans ? a + k0 : a + k0 * lda;
        hs_cpu_sgemm(ta, CblasNoTrans, M, Cn, k, ak, lda, bt, Cn, 1.0f, c, Cn);
    }
    return HS_OK;
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC]
 *   sgemm(NoTrans, Trans) onto rows pre-filled with the bias (beta = 1),
 *   so the bias costs one write instead of a second pass over out. */
hs_status hs_cpu_matmul_forward(float *out, const void *inp, const void *w, const float *bias, int64_t N, int64_t C,
                                int64_t OC, hs_dtype dt)
{
    const float beta = bias ? 1.0f : 0.0f;
    if (bias)
        fill_rows(out, bias, N, OC);
    if (dt == HS_FP32) {
        hs_cpu_sgemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, w, C, beta, out, OC);
        return HS_OK;
    }
    /* bf16: widen inp once, w a tile of output channels at a time */
    const int64_t rows = OC < TILE_ROWS ? OC : TILE_ROWS;
    float *x = hs_scratch_get(&widened, (size_t)((N + rows) * C) * sizeof(float));
    if (!x)
        return HS_ERR_OUT_OF_MEMORY;
    float *wt = x + N * C;
    widen(x, inp, N * C);
    for (int64_t o0 = 0; o0 < OC; o0 += rows) {
        const int64_t k = OC - o0 < rows ? OC - o0 : rows;
        widen(wt, (const uint16_t *)w + o0 * C, k * C);
        hs_cpu_sgemm(CblasNoTrans, CblasTrans, N, k, C, x, C, wt, C, beta, out + o0, OC);
    }
    return HS_OK;
}

/* dinp[N,C]  += dout[N,OC] @ w[OC,C]        sgemm(NoTrans, NoTrans), beta = 1
 * dw[OC,C]   += dout[N,OC]^T @ inp[N,C]     sgemm(Trans, NoTrans), beta = 1
 * dbias[OC]  += sum_n dout[n,:]
 * bf16 inp/w are widened in tiles along the reduction dimension (OC for
 * dinp, N for dw); the gradients stay fp32. */
hs_status hs_cpu_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const void *inp,
                                 const void *w, int64_t N, int64_t C, int64_t OC, hs_dtype dt)
{
    if (dbias)
        bias_grad(dbias, dout, N, OC);
    if (dt == HS_FP32) {
        if (dinp)
            hs_cpu_sgemm(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, w, C, 1.0f, dinp, C);
        if (dw)
            hs_cpu_sgemm(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.0f, dw, C);
        return HS_OK;
    }
    if (dinp) {
        hs_status s = gemm_widen_b(dinp, dout, CblasNoTrans, OC, w, N, OC, C);
        if (s)
            return s;
    }
    return dw ? gemm_widen_b(dw, dout, CblasTrans, OC, inp, OC, N, C) : HS_OK;
}
