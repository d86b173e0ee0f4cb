/* Token + position embedding on the CPU. */
#include "kernels/cpu/dense.h"

#include <string.h>

/* out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]  (just the wte row without wpe) */
void hs_cpu_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int64_t B,
                              int64_t T, int64_t C, int64_t V, int64_t v0)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(B * T * C))
    for (int64_t i = 0; i < B * T; i++) {
        const int64_t row = (int64_t)tokens[i] - v0;
        float *o = out + i * C;
        if (row < 0 || row >= V) /* another shard's token */
            memset(o, 0, (size_t)C * sizeof(float));
        else
            memcpy(o, wte + row * C, (size_t)C * sizeof(float));
        if (wpe) {
            const float *p = wpe + (i % T) * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                o[c] += p[c];
        }
    }
}

/* dwte[tokens[b,t],:] += dout[b,t,:];  dwpe[t,:] += sum_b dout[b,t,:].
 * Each thread owns a slice of the channels and walks every position in
 * order, so a vocabulary row hit by several positions sums them in position
 * order whatever the thread count, with no atomics. */
void hs_cpu_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int64_t B,
                               int64_t T, int64_t C, int64_t V, int64_t v0)
{
#pragma omp parallel num_threads(hs_cpu_threads(B * T * C))
    {
        int64_t c0, c1;
        hs_cpu_channels(C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int64_t i = 0; i < B * T; i++) {
            const float *d = dout + i * C;
            const int64_t row = (int64_t)tokens[i] - v0;
            if (dwte && row >= 0 && row < V) {
                float *e = dwte + row * C;
#pragma omp simd
                for (int64_t c = c0; c < c1; c++)
                    e[c] += d[c];
            }
            if (dwpe) {
                float *p = dwpe + (i % T) * C;
#pragma omp simd
                for (int64_t c = c0; c < c1; c++)
                    p[c] += d[c];
            }
        }
    }
}
