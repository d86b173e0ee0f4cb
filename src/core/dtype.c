/* Dtype table and fp32 <-> bf16 / fp16 conversions.
 *
 * The scalar functions define the results: round to nearest even, NaN
 * stays NaN with its sign and top payload bits and the quiet bit set, Inf
 * stays Inf, no flushing of denormals in either direction. The bulk
 * functions pick a SIMD path at run time and must give bit-identical
 * results for every input; where an instruction deviates (vcvtneps2bf16
 * reads fp32 denormals as zero) the affected vectors go through the scalar
 * code instead.
 */
#include "hyperspeed/core.h"

#include <immintrin.h>
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

/* ------------------------------------------------------------ SIMD paths */

/* vcvtneps2bf16 rounds to nearest even and quiets NaNs exactly like the
 * scalar code, but treats fp32 denormal inputs as zero. Vectors holding a
 * denormal (rare: |x| < 2^-126) take the scalar path instead. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void
fp32_to_bf16_avx512bf16(uint16_t *dst, const float *src, size_t n)
{
    const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
    const __m512i man_mask = _mm512_set1_epi32(0x007fffff);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(src + i);
        __m512i vi = _mm512_castps_si512(v);
        __mmask16 denormal = _mm512_mask_test_epi32_mask(_mm512_testn_epi32_mask(vi, exp_mask), vi, man_mask);
        if (__builtin_expect(denormal != 0, 0)) {
            for (size_t k = i; k < i + 16; k++)
                dst[k] = hs_fp32_to_bf16(src[k]);
            continue;
        }
        __m256bh b = _mm512_cvtneps_pbh(v);
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)b);
    }
    for (; i < n; i++)
        dst[i] = hs_fp32_to_bf16(src[i]);
}

/* bf16 -> fp32 is a 16-bit shift, plus setting the quiet bit of NaNs. */
__attribute__((target("avx512f"))) static void bf16_to_fp32_avx512(float *dst, const uint16_t *src, size_t n)
{
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    const __m512i inf = _mm512_set1_epi32(0x7f800000);
    const __m512i quiet = _mm512_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i))), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(w, abs_mask), inf);
        w = _mm512_mask_or_epi32(w, nan, w, quiet);
        _mm512_storeu_si512(dst + i, w);
    }
    for (; i < n; i++)
        dst[i] = hs_bf16_to_fp32(src[i]);
}

/* vcvtps2ph with an explicit round-to-nearest-even immediate (MXCSR is not
 * consulted) handles subnormal results, overflow and NaN quieting the way
 * the scalar code does; the unit test checks that bit for bit. */
__attribute__((target("avx,f16c"))) static void fp32_to_fp16_f16c(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++)
        dst[i] = hs_fp32_to_fp16(src[i]);
}

__attribute__((target("avx,f16c"))) static void fp16_to_fp32_f16c(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = hs_fp16_to_fp32(src[i]);
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

/* ------------------------------------------------------------- dispatch */

/* __builtin_cpu_supports reads a table libgcc fills before main (and it
 * checks that the OS saves the AVX-512 state), so asking on every call is
 * a load and a test: no cached state, nothing to initialise or race on. */
static int have_avx512bf16(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"); }
static int have_avx512f(void) { return __builtin_cpu_supports("avx512f"); }
static int have_f16c(void) { return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c"); }

void hs_convert_fp32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    if (have_avx512bf16())
        fp32_to_bf16_avx512bf16(dst, src, n);
    else
        fp32_to_bf16_scalar(dst, src, n);
}

void hs_convert_bf16_to_fp32(float *dst, const uint16_t *src, size_t n)
{
    if (have_avx512f())
        bf16_to_fp32_avx512(dst, src, n);
    else
        bf16_to_fp32_scalar(dst, src, n);
}

void hs_convert_fp32_to_fp16(uint16_t *dst, const float *src, size_t n)
{
    if (have_f16c())
        fp32_to_fp16_f16c(dst, src, n);
    else
        fp32_to_fp16_scalar(dst, src, n);
}

void hs_convert_fp16_to_fp32(float *dst, const uint16_t *src, size_t n)
{
    if (have_f16c())
        fp16_to_fp32_f16c(dst, src, n);
    else
        fp16_to_fp32_scalar(dst, src, n);
}

/* "avx512bf16" covers both bf16 directions (the widening needs only
 * AVX-512F, which avx512bf16 implies); "avx512" alone means bf16 -> fp32 is
 * vectorised and fp32 -> bf16 is scalar. */
const char *hs_convert_isa(void)
{
    static const char *const names[3][2] = {
        {"scalar", "f16c"},
        {"avx512", "avx512+f16c"},
        {"avx512bf16", "avx512bf16+f16c"},
    };
    int bf16 = have_avx512bf16() ? 2 : have_avx512f() ? 1 : 0;
    return names[bf16][have_f16c()];
}
