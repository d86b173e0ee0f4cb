/* AdamW, gradient sum of squares and scaling on the CPU: one pass over
 * flat buffers, cut into fixed blocks that threads take in static order. */
#include "kernels/cpu/dense.h"
#include "kernels/cpu/simd.h"

#include <math.h>

#define BLOCK ((int64_t)1 << 14)

static inline int64_t block_len(int64_t i, int64_t n) { return n - i < BLOCK ? n - i : BLOCK; }

/* The per-step scalars of AdamW, rounded to fp32 as PyTorch rounds its
 * Python (double) scalars when it applies them to fp32 tensors. */
typedef struct adamw_consts {
    float grad_scale, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, step_size;
} adamw_consts;

HS_ISA_INLINE void adamw_span_body(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                                   int64_t n, const adamw_consts *k)
{
    const adamw_consts c = *k;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i] * c.grad_scale;
        const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
        const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
        const float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * c.decay - c.step_size * mi / denom;
    }
}

HS_CPU_CLONES(adamw_span,
              (float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
               const adamw_consts *k),
              (p, g, m, v, n, k))

/* AdamW in torch.optim.AdamW's order of operations (PyTorch 1.13,
 * single-tensor path), with bc1 = 1 - beta1^step, bc2 = 1 - beta2^step:
 *   g = grad * grad_scale
 *   p = p * (1 - lr * wd)                          decay uses the old p
 *   m = beta1 m + (1 - beta1) g
 *   v = beta2 v + (1 - beta2) g^2
 *   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps) */
void hs_cpu_adamw_update(float *param, const float *grad, float *m, float *v, int64_t n, const hs_adamw_params *hp)
{
    const double step = (double)hp->step, lr = hp->lr;
    const double bc1 = 1.0 - pow(hp->beta1, step), bc2 = 1.0 - pow(hp->beta2, step);
    const adamw_consts k = {
        .grad_scale = hp->grad_scale,
        .decay = (float)(1.0 - lr * hp->weight_decay),
        .beta1 = hp->beta1,
        .one_minus_beta1 = (float)(1.0 - hp->beta1),
        .beta2 = hp->beta2,
        .one_minus_beta2 = (float)(1.0 - hp->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = hp->eps,
        .step_size = (float)(lr / bc1),
    };
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += BLOCK)
        adamw_span(param + i, grad + i, m + i, v + i, block_len(i, n), &k);
}

HS_ISA_INLINE void sum_squares_span_body(const float *x, int64_t n, double *sum)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    *sum = s;
}

HS_CPU_CLONES(sum_squares_span, (const float *x, int64_t n, double *sum), (x, n, sum))

static _Thread_local hs_scratch block_sums;

/* sum x^2: one double per fixed block, then the blocks in order. */
hs_status hs_cpu_sum_squares(const float *x, int64_t n, double *sum)
{
    const int64_t nb = (n + BLOCK - 1) / BLOCK;
    double *part = hs_scratch_get(&block_sums, (size_t)nb * sizeof(double));
    if (!part)
        return HS_ERR_OUT_OF_MEMORY;
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t b = 0; b < nb; b++)
        sum_squares_span(x + b * BLOCK, block_len(b * BLOCK, n), &part[b]);
    double s = 0.0;
    for (int64_t b = 0; b < nb; b++)
        s += part[b];
    *sum = s;
    return HS_OK;
}

/* x *= scale */
void hs_cpu_scale(float *x, int64_t n, float scale)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += BLOCK) {
        const int64_t len = block_len(i, n);
#pragma omp simd
        for (int64_t j = i; j < i + len; j++)
            x[j] *= scale;
    }
}
