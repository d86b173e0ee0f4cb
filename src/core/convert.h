/* The bulk 16-bit conversions of every instruction level, for the
 * dispatch in dtype.c and for tests that run each level's code. */
#ifndef HS_CORE_CONVERT_H
#define HS_CORE_CONVERT_H

#include "hyperspeed/core.h"

typedef struct hs_convert_fns {
    void (*fp32_to_bf16)(uint16_t *dst, const float *src, size_t n);
    void (*bf16_to_fp32)(float *dst, const uint16_t *src, size_t n);
    void (*fp32_to_fp16)(uint16_t *dst, const float *src, size_t n);
    void (*fp16_to_fp32)(float *dst, const uint16_t *src, size_t n);
} hs_convert_fns;

/* Each level's table (convert_avx512.c, convert_avx2.c, dtype.c). A level's
 * functions may run only on a CPU that has it (hs_cpu_isa_native()). */
extern const hs_convert_fns hs_convert_avx512, hs_convert_avx2, hs_convert_baseline;

/* The table of level isa (baseline for values outside the enum). */
const hs_convert_fns *hs_convert_fns_for(hs_isa isa);

#endif
