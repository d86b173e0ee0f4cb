/* Bias + GELU (tanh approximation) on the CPU.
 *
 * With u = x + bias and a = sqrt(2/pi) (u + 0.044715 u^3),
 * 0.5 (1 + tanh a) = sigmoid(2a) =: s, so
 *   gelu(u)  = u s
 *   gelu'(u) = s + u * 2 s (1 - s) * sqrt(2/pi) (1 + 3 * 0.044715 u^2)
 * which needs one exp per element and no tanh. The exp is the sequence
 * kernels' vectorisable hs_fast_exp (libm's is a scalar call), and the span
 * functions are cloned for AVX-512, AVX2+FMA and baseline x86-64 as theirs.
 */
#include "kernels/cpu/dense.h"
#include "kernels/cpu/simd.h"

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f


/* sigmoid(2a) = 0.5 (1 + tanh a) for u */
HS_ISA_INLINE float gelu_s(float u) { return 1.0f / (1.0f + hs_fast_exp(-2.0f * GELU_K0 * (u + GELU_K1 * u * u * u))); }

HS_ISA_INLINE float gelu(float u) { return u * gelu_s(u); }

HS_ISA_INLINE float gelu_grad(float u)
{
    const float s = gelu_s(u);
    return s + u * 2.0f * s * (1.0f - s) * GELU_K0 * (1.0f + 3.0f * GELU_K1 * u * u);
}

HS_ISA_INLINE void gelu_span_body(float *restrict out, const float *restrict x, const float *restrict bias, int64_t n)
{
    if (bias) {
#pragma omp simd
        for (int64_t c = 0; c < n; c++)
            out[c] = gelu(x[c] + bias[c]);
    } else {
#pragma omp simd
        for (int64_t c = 0; c < n; c++)
            out[c] = gelu(x[c]);
    }
}

/* g = dout * gelu'(x + bias) */
HS_CPU_CLONES(gelu_span, (float *restrict out, const float *restrict x, const float *restrict bias, int64_t n),
              (out, x, bias, n))

HS_ISA_INLINE void gelu_grad_span_body(float *restrict g, const float *restrict dout, const float *restrict x,
                                       const float *restrict bias, int64_t n)
{
    if (bias) {
#pragma omp simd
        for (int64_t c = 0; c < n; c++)
            g[c] = dout[c] * gelu_grad(x[c] + bias[c]);
    } else {
#pragma omp simd
        for (int64_t c = 0; c < n; c++)
            g[c] = dout[c] * gelu_grad(x[c]);
    }
}

HS_CPU_CLONES(gelu_grad_span,
              (float *restrict g, const float *restrict dout, const float *restrict x, const float *restrict bias,
               int64_t n),
              (g, dout, x, bias, n))

static inline void add_span(float *restrict dst, const float *restrict g, int64_t n)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++)
        dst[c] += g[c];
}

/* out[n,c] = gelu(x[n,c] + bias[c]) */
void hs_cpu_bias_gelu_forward(float *out, const float *x, const float *bias, int64_t N, int64_t C)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(N * C))
    for (int64_t n = 0; n < N; n++)
        gelu_span(out + n * C, x + n * C, bias, C);
}

/* g[n,c] = dout[n,c] * gelu'(x[n,c] + bias[c]);  dx += g;  dbias[c] += sum_n g[n,c].
 * Each thread owns a slice of the channels and walks all rows, so dbias
 * sums rows in order whatever the thread count; g lives in a stack span. */
void hs_cpu_bias_gelu_backward(float *dx, float *dbias, const float *dout, const float *x, const float *bias,
                               int64_t N, int64_t C)
{
    enum { SPAN = 512 };
#pragma omp parallel num_threads(hs_cpu_threads(N * C))
    {
        float g[SPAN];
        int64_t c0, c1;
        hs_cpu_channels(C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int64_t n = 0; n < N; n++) {
            for (int64_t s = c0; s < c1; s += SPAN) {
                const int64_t len = c1 - s < SPAN ? c1 - s : SPAN, at = n * C + s;
                gelu_grad_span(g, dout + at, x + at, bias ? bias + s : NULL, len);
                if (dx)
                    add_span(dx + at, g, len);
                if (dbias)
                    add_span(dbias + s, g, len);
            }
        }
    }
}
