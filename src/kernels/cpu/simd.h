/* Helpers for the CPU kernels' vectorised loops: per-ISA function clones
 * and an exp that vectorises. */
#ifndef HS_KERNELS_CPU_SIMD_H
#define HS_KERNELS_CPU_SIMD_H

#include "core/isa.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The hot loops of the CPU kernels are compiled three times, for AVX-512,
 * AVX2+FMA and the x86-64-v2 baseline, and each call runs the clone of the
 * level in use (core/isa.h), so one binary is fast on new CPUs and runs on
 * old ones. They never look at floating-point exception flags, so they drop
 * -ftrapping-math, without which GCC will not if-convert (and so not
 * vectorise) the range checks of hs_fast_exp for AVX2 and SSE.
 * HS_CPU_CLONES(name, (params), (args)) defines `name` from name_body. */
#define HS_CPU_CLONES(name, params, args) HS_ISA_CLONES(optimize("no-trapping-math"), name, params, args)

/* exp(x) in float, written so that `#pragma omp simd` loops vectorise it
 * (libm's expf does not). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
 * Cephes' degree-6 polynomial for e^r (about 1 ulp), and 2^n built in the
 * exponent bits; n comes out of the mantissa of x/ln2 + 1.5*2^23, so there
 * is no float->int conversion. Below -87.3 the result is 0 (so -inf, the
 * masked score, gives exactly 0), above 88.3 it is +inf; NaN stays NaN. */
static inline __attribute__((always_inline)) float hs_fast_exp(float x)
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

#endif
