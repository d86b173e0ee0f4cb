/* LayerNorm and RMSNorm over the last dimension, on the CPU.
 *
 * Rows go to threads in static blocks; a row (C floats) stays in L1 between
 * its passes, so each tensor is read from memory once. Parameter gradients
 * are summed over rows in per-thread partial vectors and combined in thread
 * order: bit-identical run to run for a given thread count.
 */
#include "kernels/cpu/dense.h"

#include <math.h>
#include <string.h>

static _Thread_local hs_scratch partials;

/* The per-thread partial vectors for nvec gradients of C floats:
 * thread t's vector j is at part + (t * nvec + j) * C. */
static float *partials_get(int nt, int nvec, int64_t C)
{
    return hs_scratch_get(&partials, (size_t)nt * (size_t)nvec * (size_t)C * sizeof(float));
}

/* Inside a parallel region: dst[c] += sum over threads t (in order) of vector
 * j of thread t; the channels are split over the team. */
static void partials_combine(float *dst, const float *part, int nvec, int j, int64_t C)
{
    const int nt = omp_get_num_threads();
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; c++) {
        float s = 0.0f;
        for (int t = 0; t < nt; t++)
            s += part[(t * nvec + j) * C + c];
        dst[c] += s;
    }
}

static inline float row_sum(const float *x, int64_t C)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++)
        s += x[c];
    return s;
}

/* LayerNorm forward, per row:
 *   mean = sum_c x / C,  var = sum_c (x - mean)^2 / C,  rstd = 1 / sqrt(var + eps)
 *   out = (x - mean) * rstd * w + b */
void hs_cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, float eps, int64_t N, int64_t C)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(N * C))
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        const float m = row_sum(x, C) / (float)C;
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; c++)
            var += (x[c] - m) * (x[c] - m);
        const float s = 1.0f / sqrtf(var / (float)C + eps);
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            o[c] = (x[c] - m) * s * w[c] + b[c];
        if (mean)
            mean[n] = m;
        if (rstd)
            rstd[n] = s;
    }
}

/* LayerNorm backward, per row, with xhat = (x - mean) * rstd, dxhat = dout * w:
 *   dinp += rstd * (dxhat - mean_c(dxhat) - xhat * mean_c(dxhat * xhat))
 *   dw   += sum_n dout * xhat,   db += sum_n dout */
hs_status hs_cpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                    const float *w, const float *mean, const float *rstd, int64_t N, int64_t C)
{
    const int nt = hs_cpu_threads(N * C);
    float *part = dw || db ? partials_get(nt, 2, C) : NULL;
    if ((dw || db) && !part)
        return HS_ERR_OUT_OF_MEMORY;
#pragma omp parallel num_threads(nt)
    {
        float *pdw = part ? part + (int64_t)omp_get_thread_num() * 2 * C : NULL, *pdb = pdw ? pdw + C : NULL;
        if (pdw)
            memset(pdw, 0, (size_t)(2 * C) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            const float m = mean[n], s = rstd[n];
            if (pdw) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    pdw[c] += dy[c] * (x[c] - m) * s;
                    pdb[c] += dy[c];
                }
            }
            if (dinp) {
                float sum_d = 0.0f, sum_dx = 0.0f;
#pragma omp simd reduction(+ : sum_d, sum_dx)
                for (int64_t c = 0; c < C; c++) {
                    const float d = dy[c] * w[c];
                    sum_d += d;
                    sum_dx += d * (x[c] - m) * s;
                }
                const float mean_d = sum_d / (float)C, mean_dx = sum_dx / (float)C;
                float *di = dinp + n * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    di[c] += s * (dy[c] * w[c] - mean_d - (x[c] - m) * s * mean_dx);
            }
        }
        if (dw)
            partials_combine(dw, part, 2, 0, C);
        if (db)
            partials_combine(db, part, 2, 1, C);
    }
    return HS_OK;
}

/* RMSNorm forward, per row: rstd = 1 / sqrt(sum_c x^2 / C + eps),  out = x * rstd * w */
void hs_cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps, int64_t N,
                            int64_t C)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(N * C))
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = 0; c < C; c++)
            ss += x[c] * x[c];
        const float s = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            o[c] = x[c] * s * w[c];
        if (rstd)
            rstd[n] = s;
    }
}

/* RMSNorm backward, per row, with xhat = x * rstd, dxhat = dout * w:
 *   dinp += rstd * (dxhat - xhat * mean_c(dxhat * xhat))
 *   dw   += sum_n dout * xhat */
hs_status hs_cpu_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                  const float *rstd, int64_t N, int64_t C)
{
    const int nt = hs_cpu_threads(N * C);
    float *part = dw ? partials_get(nt, 1, C) : NULL;
    if (dw && !part)
        return HS_ERR_OUT_OF_MEMORY;
#pragma omp parallel num_threads(nt)
    {
        float *pdw = part ? part + (int64_t)omp_get_thread_num() * C : NULL;
        if (pdw)
            memset(pdw, 0, (size_t)C * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            const float s = rstd[n];
            if (pdw) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    pdw[c] += dy[c] * x[c] * s;
            }
            if (dinp) {
                float sum_dx = 0.0f;
#pragma omp simd reduction(+ : sum_dx)
                for (int64_t c = 0; c < C; c++)
                    sum_dx += dy[c] * w[c] * x[c] * s;
                const float mean_dx = sum_dx / (float)C;
                float *di = dinp + n * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    di[c] += s * (dy[c] * w[c] - x[c] * s * mean_dx);
            }
        }
        if (dw)
            partials_combine(dw, part, 1, 0, C);
    }
    return HS_OK;
}
