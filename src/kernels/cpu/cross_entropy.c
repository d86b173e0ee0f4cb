/* Fused softmax + cross-entropy on the CPU, one row per work item.
 *
 * Forward, one pass over the row in chunks small enough to stay in L1, with
 * an online max/sum (Milakov & Gimelshein 2018): for chunk c,
 *   m' = max(m, max_c x);  s = s e^(m - m') + sum_c e^(x - m');  m = m'
 *   lse = m + log s;  loss = lse - x[target]   (0 when target = -1)
 * Each chunk is read from memory once for its max and again from L1 for its
 * sum; no probability buffer exists.
 * Backward, written (not accumulated), element by element so that dlogits
 * may be the logits buffer itself:
 *   dlogits[v] = dloss * (e^(x[v] - lse) - [v == target])   (0 when target = -1)
 * Vocab-parallel shards (columns v0 .. v0 + V of the vocabulary) compute
 * the same on their columns: the forward returns x[target] instead of the
 * loss (0 when the target is in another shard), the backward takes the
 * combined lse and subtracts only where the target is its own column.
 */
#include "kernels/cpu/seq.h"

#define CHUNK 2048 /* floats: 8 KiB */

/* *lse = log sum_v e^x[v] */
HS_ISA_INLINE void row_lse_body(const float *x, int64_t V, float *lse)
{
    float m = -INFINITY, s = 0.0f;
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
        const int64_t n = V - c0 < CHUNK ? V - c0 : CHUNK;
        const float *xc = x + c0;
        float cm = -INFINITY;
#pragma omp simd reduction(max : cm)
        for (int64_t i = 0; i < n; i++)
            cm = xc[i] > cm ? xc[i] : cm;
        if (cm > m) {
            s *= hs_fast_exp(m - cm);
            m = cm;
        }
        float cs = 0.0f;
#pragma omp simd reduction(+ : cs)
        for (int64_t i = 0; i < n; i++)
            cs += hs_fast_exp(xc[i] - m);
        s += cs;
    }
    *lse = m + logf(s);
}

HS_CPU_CLONES(row_lse, (const float *x, int64_t V, float *lse), (x, V, lse))

HS_ISA_INLINE void row_grad_body(float *d, const float *x, int64_t V, float lse, float dloss)
{
#pragma omp simd
    for (int64_t i = 0; i < V; i++)
        d[i] = dloss * hs_fast_exp(x[i] - lse);
}

HS_CPU_CLONES(row_grad, (float *d, const float *x, int64_t V, float lse, float dloss), (d, x, V, lse, dloss))

/* 1 when vocabulary id t (not -1) is among the columns [v0, v0 + V). */
static int in_shard(int32_t t, int64_t v0, int64_t V)
{
    return t >= 0 && t - v0 >= 0 && t - v0 < V;
}

void hs_cpu_cross_entropy_forward(float *out, float *lse, const float *logits, const int32_t *targets, int64_t N,
                                  int64_t V, int64_t v0, int shard)
{
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        const int32_t t = targets[n];
        row_lse(x, V, &lse[n]);
        if (shard)
            out[n] = in_shard(t, v0, V) ? x[t - v0] : 0.0f;
        else
            out[n] = t >= 0 ? lse[n] - x[t - v0] : 0.0f;
    }
}

void hs_cpu_cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                   int64_t N, int64_t V, int64_t v0, float dloss)
{
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
    for (int64_t n = 0; n < N; n++) {
        float *d = dlogits + n * V;
        if (targets[n] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        row_grad(d, logits + n * V, V, lse[n], dloss);
        if (in_shard(targets[n], v0, V))
            d[targets[n] - v0] -= dloss;
    }
}
