/* CPU bodies of the sequence kernels (causal attention, RoPE, SwiGLU,
 * softmax cross-entropy) and the two helpers they share. The entry points in
 * src/kernels/<family>.c validate their tensors and call these with raw
 * pointers and sizes they have already checked.
 *
 * Threading: every body runs OpenMP regions of hs_num_threads() threads
 * with a static schedule, and every output element is produced by exactly
 * one work item in a fixed order (no float atomics, no cross-thread
 * reductions), so results are bit-identical from run to run.
 */
#ifndef HS_KERNELS_CPU_SEQ_H
#define HS_KERNELS_CPU_SEQ_H

#include "hyperspeed/core.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The hot loops of these kernels are compiled three times, for AVX-512,
 * AVX2+FMA and the x86-64-v2 baseline; the loader picks the best one the CPU
 * runs (GNU ifunc), so one binary is fast on new CPUs and runs on old ones.
 * They never look at floating-point exception flags, so they drop
 * -ftrapping-math, without which GCC will not if-convert (and so not
 * vectorise) the range checks of hs_seq_exp for AVX2 and SSE. */
#define HS_SEQ_CLONES                                                                                                  \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("no-trapping-math")))

/* exp(x) in float, written so that `#pragma omp simd` loops vectorise it
 * (libm's expf does not). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
 * Cephes' degree-6 polynomial for e^r (about 1 ulp), and 2^n built in the
 * exponent bits; n comes out of the mantissa of x/ln2 + 1.5*2^23, so there
 * is no float->int conversion. Below -87.3 the result is 0 (so -inf, the
 * masked score, gives exactly 0), above 88.3 it is +inf; NaN stays NaN. */
static inline __attribute__((always_inline)) float hs_seq_exp(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.3f ? -87.3f : x;
    xc = xc > 88.3f ? 88.3f : xc;
    float t = xc * 1.44269504f + shifter;
    float n = t - shifter;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t ti, si;
    memcpy(&ti, &t, sizeof ti);
    si = (ti - 0x4B400000u + 127u) << 23; /* (n + 127) << 23 */
    float scale;
    memcpy(&scale, &si, sizeof scale);
    float y = x < -87.3f ? 0.0f : p * scale;
    return x > 88.3f ? INFINITY : y;
}

/* attention (cpu/attention.c): qkv [B,T,3C], out [B,T,C], lse [B,NH,T],
 * C = NH*HD. HS_ERR_OUT_OF_MEMORY if the first call's workspace cannot be had. */
hs_status hs_cpu_attention_forward(float *out, float *lse, const float *qkv, int64_t B, int64_t T, int64_t NH,
                                   int64_t HD);
hs_status hs_cpu_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, int64_t B, int64_t T, int64_t NH, int64_t HD);

/* RoPE (cpu/rope.c): x [B,T,H,HD]; rotates heads [0, n_rot) by +angle, or by
 * -angle (R^T) when inverse is set; copies the others. out may alias inp. */
void hs_cpu_rope(float *out, const float *inp, int64_t B, int64_t T, int64_t H, int64_t HD, int64_t n_rot, float theta,
                 int inverse);

/* SwiGLU (cpu/swiglu.c): inp [N,2F], out [N,F]; backward accumulates dinp. */
void hs_cpu_swiglu_forward(float *out, const float *inp, int64_t N, int64_t F);
void hs_cpu_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t N, int64_t F);

/* cross-entropy (cpu/cross_entropy.c): logits [N,V], targets already in
 * [-1, V); backward writes dlogits, which may alias logits. */
void hs_cpu_cross_entropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int64_t N,
                                  int64_t V);
void hs_cpu_cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                   int64_t N, int64_t V, float dloss);

#endif
