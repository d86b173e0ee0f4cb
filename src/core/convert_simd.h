/* The bulk conversions written once against core/vec16.h; included by
 * convert_avx512.c and convert_avx2.c, each compiled for its level, which
 * name their table HS_CONVERT_TABLE. Whole vectors go through the SIMD
 * loads and stores, the tail through the scalar definitions. */
#include "core/convert.h"
#include "core/vec16.h"

static void narrow_bf16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + HS_VLANES <= n; i += HS_VLANES)
        hs_vstore_bf16(dst + i, hs_vload(src + i));
    for (; i < n; i++)
        dst[i] = hs_fp32_to_bf16(src[i]);
}

static void widen_bf16(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + HS_VLANES <= n; i += HS_VLANES)
        hs_vstore(dst + i, hs_vload_bf16(src + i));
    for (; i < n; i++)
        dst[i] = hs_bf16_to_fp32(src[i]);
}

static void narrow_fp16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + HS_VLANES <= n; i += HS_VLANES)
        hs_vstore_fp16(dst + i, hs_vload(src + i));
    for (; i < n; i++)
        dst[i] = hs_fp32_to_fp16(src[i]);
}

static void widen_fp16(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + HS_VLANES <= n; i += HS_VLANES)
        hs_vstore(dst + i, hs_vload_fp16(src + i));
    for (; i < n; i++)
        dst[i] = hs_fp16_to_fp32(src[i]);
}

const hs_convert_fns HS_CONVERT_TABLE = {narrow_bf16, widen_bf16, narrow_fp16, widen_fp16};
