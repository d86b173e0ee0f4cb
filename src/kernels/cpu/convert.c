/* Casts and fills on the CPU: the bulk conversions of core/dtype.c (and
 * plain stores for fills) over static blocks of the OpenMP team. */
#include "kernels/cpu/dense.h"

#include <string.h>

#define BLOCK ((int64_t)1 << 14)

/* dst[i] = src[i] converted; the pair of dtypes is one of the four the
 * entry point accepts. Each block converts on its own, so the result does
 * not depend on the thread count. */
void hs_cpu_cast(void *dst, hs_dtype dst_dt, const void *src, hs_dtype src_dt, int64_t n)
{
#pragma omp parallel for schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i += BLOCK) {
        const size_t len = (size_t)(n - i < BLOCK ? n - i : BLOCK);
        if (src_dt == HS_FP32 && dst_dt == HS_BF16)
            hs_convert_fp32_to_bf16((uint16_t *)dst + i, (const float *)src + i, len);
        else if (src_dt == HS_FP32 && dst_dt == HS_FP16)
            hs_convert_fp32_to_fp16((uint16_t *)dst + i, (const float *)src + i, len);
        else if (src_dt == HS_BF16)
            hs_convert_bf16_to_fp32((float *)dst + i, (const uint16_t *)src + i, len);
        else
            hs_convert_fp16_to_fp32((float *)dst + i, (const uint16_t *)src + i, len);
    }
}

/* t[i] = value rounded to dt (fp32, bf16 or fp16); memset when every byte
 * of the stored value is zero. */
void hs_cpu_fill(void *t, hs_dtype dt, float value, int64_t n)
{
    if (dt == HS_FP32) {
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        if (bits == 0) {
            memset(t, 0, (size_t)n * sizeof(float));
            return;
        }
        float *x = t;
#pragma omp parallel for simd schedule(static) num_threads(hs_cpu_threads(n))
        for (int64_t i = 0; i < n; i++)
            x[i] = value;
        return;
    }
    const uint16_t h = dt == HS_BF16 ? hs_fp32_to_bf16(value) : hs_fp32_to_fp16(value);
    if (h == 0) {
        memset(t, 0, (size_t)n * sizeof h);
        return;
    }
    uint16_t *x = t;
#pragma omp parallel for simd schedule(static) num_threads(hs_cpu_threads(n))
    for (int64_t i = 0; i < n; i++)
        x[i] = h;
}
