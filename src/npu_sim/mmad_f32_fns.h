/* mmad's fp32 kernel in NZ layout, one function per instruction level
 * (mmad_f32.h); callable only on a CPU that has the level.
 * c: L0C (NZ fp32, mp rows per column block); a: A widened, ZZ fp32 with kp
 * columns; bt: B as [ceil(n/16)][k][16] fp32; bias: n fp32 or NULL;
 * accumulate: C += A B (else C = bias + A B, or A B). */
#ifndef HS_NPU_SIM_MMAD_F32_FNS_H
#define HS_NPU_SIM_MMAD_F32_FNS_H

#include <stdint.h>

typedef void hs_npu_mmad_f32_fn(float *c, const float *a, const float *bt, const float *bias, int accumulate,
                                int64_t m, int64_t k, int64_t n, int64_t mp, int64_t kp);
hs_npu_mmad_f32_fn hs_npu_mmad_f32_avx512, hs_npu_mmad_f32_avx2, hs_npu_mmad_f32_baseline;

#endif
