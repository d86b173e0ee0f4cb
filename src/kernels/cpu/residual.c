/* Residual add on the CPU: flat element-wise loops in static blocks. */
#include "kernels/cpu/dense.h"

#define BLOCK ((int64_t)1 << 14)

static inline int64_t block_len(int64_t i, int64_t n) { return n - i < BLOCK ? n - i : BLOCK; }

static inline void add_into(float *dst, const float *src, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* out = a + b; out may alias a or b (each element is read before it is written). */
void hs_cpu_residual_forward(float *out, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += BLOCK) {
        const int64_t len = block_len(i, n);
#pragma omp simd
        for (int64_t j = i; j < i + len; j++)
            out[j] = a[j] + b[j];
    }
}

/* da += dout;  db += dout */
void hs_cpu_residual_backward(float *da, float *db, const float *dout, int64_t n)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += BLOCK) {
        if (da)
            add_into(da + i, dout + i, block_len(i, n));
        if (db)
            add_into(db + i, dout + i, block_len(i, n));
    }
}
