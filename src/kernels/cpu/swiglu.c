/* SwiGLU on the CPU. Row n of inp is [g | u], F each:
 *   out = silu(g) * u,  silu(g) = g s,  s = sigmoid(g) = 1 / (1 + e^-g)
 *   du += dout * silu(g)
 *   dg += dout * u * silu'(g),  silu'(g) = s (1 + g (1 - s))
 * s is computed from e = e^-|g| <= 1 (s = 1/(1+e) for g >= 0, e/(1+e)
 * otherwise), which never overflows and keeps the loops vectorisable. */
#include "kernels/cpu/seq.h"

static inline __attribute__((always_inline)) float sigmoid(float g)
{
    float e = hs_fast_exp(-fabsf(g));
    return (g >= 0.0f ? 1.0f : e) / (1.0f + e);
}

HS_ISA_INLINE void forward_row_body(float *out, const float *g, const float *u, int64_t F)
{
#pragma omp simd
    for (int64_t i = 0; i < F; i++)
        out[i] = g[i] * sigmoid(g[i]) * u[i];
}

HS_CPU_CLONES(forward_row, (float *out, const float *g, const float *u, int64_t F), (out, g, u, F))

HS_ISA_INLINE void backward_row_body(float *dg, float *du, const float *dout, const float *g, const float *u,
                                     int64_t F)
{
#pragma omp simd
    for (int64_t i = 0; i < F; i++) {
        float s = sigmoid(g[i]);
        dg[i] += dout[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] += dout[i] * g[i] * s;
    }
}

HS_CPU_CLONES(backward_row, (float *dg, float *du, const float *dout, const float *g, const float *u, int64_t F),
              (dg, du, dout, g, u, F))

void hs_cpu_swiglu_forward(float *out, const float *inp, int64_t N, int64_t F)
{
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
    for (int64_t n = 0; n < N; n++)
        forward_row(out + n * F, inp + n * 2 * F, inp + n * 2 * F + F, F);
}

void hs_cpu_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t N, int64_t F)
{
#pragma omp parallel for num_threads(hs_num_threads()) schedule(static)
    for (int64_t n = 0; n < N; n++)
        backward_row(dinp + n * 2 * F, dinp + n * 2 * F + F, dout + n * F, inp + n * 2 * F, inp + n * 2 * F + F, F);
}
