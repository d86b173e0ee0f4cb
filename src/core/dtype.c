/* Dtype table and fp32 <-> bf16 / fp16 conversions.
 *
 * The scalar functions define the results: round to nearest even, NaN
 * stays NaN with its sign and top payload bits and the quiet bit set, Inf
 * stays Inf, no flushing of denormals in either direction. The bulk
 * functions run the code of the level hs_cpu_isa() gives (AVX-512, AVX2 +
 * F16C, or these scalar loops) and every level gives bit-identical results
 * for every input. (vcvtneps2bf16 is not used: it reads fp32 denormals as
 * zero, and the integer rounding in core/vec16.h is as fast.)
 */
#include "core/convert.h"

#include <string.h>

/* ---------------------------------------------------------------- table */

static const struct {
    const char *name;
    size_t size;
} dtype_info[HS_DTYPE_COUNT] = {
    [HS_FP32] = {"fp32", 4}, [HS_BF16] = {"bf16", 2},  [HS_FP16] = {"fp16", 2},
    [HS_INT32] = {"int32", 4}, [HS_INT64] = {"int64", 8}, [HS_INT8] = {"int8", 1},
};

size_t hs_dtype_size(hs_dtype dt) { return (unsigned)dt < HS_DTYPE_COUNT ? dtype_info[dt].size : 0; }

const char *hs_dtype_name(hs_dtype dt) { return (unsigned)dt < HS_DTYPE_COUNT ? dtype_info[dt].name : "invalid"; }

hs_status hs_dtype_parse(const char *name, hs_dtype *out)
{
    if (!name || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_dtype_parse: %s is NULL", name ? "out" : "name");
    for (int i = 0; i < HS_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (hs_dtype)i;
            return HS_OK;
        }
    }
    return hs_error(HS_ERR_NOT_FOUND, "unknown dtype \"%s\" (expected fp32, bf16, fp16, int32, int64 or int8)", name);
}

/* --------------------------------------------------------------- scalar */

static inline uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#define F32_ABS 0x7fffffffu
#define F32_INF 0x7f800000u
#define F32_QUIET 0x00400000u

uint16_t hs_fp32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & F32_ABS) > F32_INF) /* NaN: truncating could leave only zero payload bits, i.e. Inf */
        return (uint16_t)((u >> 16) | 0x0040);
    /* Adding 0x7fff plus the kept LSB rounds to nearest even; a carry out of
     * the mantissa bumps the exponent, which is exactly right (up to Inf).
     * Denormals need no special case: bf16 shares fp32's exponent range. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float hs_bf16_to_fp32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    if ((u & F32_ABS) > F32_INF)
        u |= F32_QUIET; /* as x86 conversions do: a signalling NaN comes out quiet */
    return f32_from_bits(u);
}

/* fp32 -> fp16 thresholds on |x| bits: 65520 is halfway between fp16 max
 * 65504 and 65536, and ties to even round it up, so it overflows. */
#define F16_OVERFLOW 0x477ff000u /* 65520.0f */
#define F16_MIN_NORMAL 0x38800000u /* 2^-14 */
#define F32_TO_F16_REBIAS 0x38000000u /* (127 - 15) << 23 */

/* |x| < 2^-14: the result is a fp16 subnormal (or zero), a multiple of
 * 2^-24. The fp32 significand m (with its implicit bit) is m * 2^(e-150), so
 * in units of 2^-24 it is m >> (126 - e), rounded to nearest even. */
static uint16_t fp16_subnormal_from_bits(uint32_t a)
{
    uint32_t e = a >> 23;
    if (e < 102) /* shift > 24: below 2^-25, rounds to zero (fp32 denormals too) */
        return 0;
    uint32_t m = (a & 0x007fffffu) | 0x00800000u;
    uint32_t s = 126 - e; /* 14..24 */
    uint32_t q = m >> s;
    uint32_t rem = m & ((1u << s) - 1);
    uint32_t half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* may carry to 0x400, the smallest normal: the right encoding */
    return (uint16_t)q;
}

uint16_t hs_fp32_to_fp16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & F32_ABS;
    if (a > F32_INF) /* NaN: keep the top 10 payload bits, set the quiet bit */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x03ffu));
    if (a >= F16_OVERFLOW)
        return (uint16_t)(sign | 0x7c00u);
    if (a < F16_MIN_NORMAL)
        return (uint16_t)(sign | fp16_subnormal_from_bits(a));
    uint32_t r = a - F32_TO_F16_REBIAS;
    r += 0x0fffu + ((r >> 13) & 1u); /* round to nearest even on the 13 dropped bits */
    return (uint16_t)(sign | (r >> 13));
}

float hs_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x03ffu;
    if (e == 0x1f) /* Inf, or NaN made quiet with its payload kept */
        return f32_from_bits(sign | F32_INF | (m ? F32_QUIET | (m << 13) : 0));
    if (e == 0) /* zero or subnormal: m * 2^-24 is exact and normal in fp32 */
        return f32_from_bits(sign | f32_bits((float)m * 0x1p-24f));
    return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

/* ------------------------------------------------------ scalar fallbacks */

static void fp32_to_bf16_scalar(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = hs_fp32_to_bf16(src[i]);
}

static void bf16_to_fp32_scalar(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = hs_bf16_to_fp32(src[i]);
}

static void fp32_to_fp16_scalar(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = hs_fp32_to_fp16(src[i]);
}

static void fp16_to_fp32_scalar(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = hs_fp16_to_fp32(src[i]);
}

const hs_convert_fns hs_convert_baseline = {fp32_to_bf16_scalar, bf16_to_fp32_scalar, fp32_to_fp16_scalar,
                                             fp16_to_fp32_scalar};

/* ------------------------------------------------------------- dispatch */

const hs_convert_fns *hs_convert_fns_for(hs_isa isa)
{
    switch (isa) {
    case HS_ISA_AVX512: return &hs_convert_avx512;
    case HS_ISA_AVX2: return &hs_convert_avx2;
    default: return &hs_convert_baseline;
    }
}

void hs_convert_fp32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    hs_convert_fns_for(hs_cpu_isa())->fp32_to_bf16(dst, src, n);
}

void hs_convert_bf16_to_fp32(float *dst, const uint16_t *src, size_t n)
{
    hs_convert_fns_for(hs_cpu_isa())->bf16_to_fp32(dst, src, n);
}

void hs_convert_fp32_to_fp16(uint16_t *dst, const float *src, size_t n)
{
    hs_convert_fns_for(hs_cpu_isa())->fp32_to_fp16(dst, src, n);
}

void hs_convert_fp16_to_fp32(float *dst, const uint16_t *src, size_t n)
{
    hs_convert_fns_for(hs_cpu_isa())->fp16_to_fp32(dst, src, n);
}
