/* Helpers for the CPU kernels' vectorised loops: per-ISA function clones
 * and (core/fast_exp.h) an exp that vectorises. */
#ifndef HS_KERNELS_CPU_SIMD_H
#define HS_KERNELS_CPU_SIMD_H

#include "core/fast_exp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The hot loops of the CPU kernels are compiled three times, for AVX-512,
 * AVX2+FMA and the x86-64-v2 baseline; the loader picks the best one the CPU
 * runs (GNU ifunc), so one binary is fast on new CPUs and runs on old ones.
 * They never look at floating-point exception flags, so they drop
 * -ftrapping-math, without which GCC will not if-convert (and so not
 * vectorise) the range checks of hs_fast_exp for AVX2 and SSE. */
#define HS_CPU_CLONES                                                                                                  \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("no-trapping-math")))

#endif
