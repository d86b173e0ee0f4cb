/* fp32 vectors and the 16-bit float formats, for one instruction level.
 *
 * A file that includes this header defines HS_VEC16_AVX512 or
 * HS_VEC16_AVX2 first and is compiled for that level (#pragma GCC target
 * before the include). It gets hs_vf (HS_VLANES floats) and loads and
 * stores that widen from / round to bf16 and fp16 exactly as the scalar
 * definitions in src/core/dtype.c do:
 *   bf16 -> fp32: the 16-bit shift, with the quiet bit set on NaNs;
 *   fp32 -> bf16: add 0x7fff plus the kept LSB and shift (round to nearest
 *                 even, carries into the exponent up to Inf); a NaN keeps
 *                 its top half with the quiet bit set;
 *   fp16 <-> fp32: vcvtph2ps / vcvtps2ph with an explicit round-to-nearest-
 *                 even immediate (MXCSR is not read), which rounds
 *                 subnormals, overflows and quiets NaNs as the scalar code.
 * and the NaN-propagating max/min the reductions use (x wins when it is NaN
 * or beats y). One loop written against these serves every level. */
#ifndef HS_CORE_VEC16_H
#define HS_CORE_VEC16_H

#include <immintrin.h>
#include <stdint.h>

#define HS_VF32_ABS 0x7fffffff
#define HS_VF32_INF 0x7f800000
#define HS_VF32_QUIET 0x00400000

#if defined(HS_VEC16_AVX512)

#define HS_VLANES 16
typedef __m512 hs_vf;

static inline hs_vf hs_vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void hs_vstore(float *p, hs_vf v) { _mm512_storeu_ps(p, v); }
static inline hs_vf hs_vadd(hs_vf x, hs_vf y) { return _mm512_add_ps(x, y); }
static inline hs_vf hs_vdiv(hs_vf x, hs_vf y) { return _mm512_div_ps(x, y); }
static inline hs_vf hs_vset1(float s) { return _mm512_set1_ps(s); }

static inline hs_vf hs_vpick(hs_vf x, hs_vf y, int max)
{
    __mmask16 beats = max ? _mm512_cmp_ps_mask(x, y, _CMP_GT_OQ) : _mm512_cmp_ps_mask(x, y, _CMP_LT_OQ);
    return _mm512_mask_blend_ps(beats | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

static inline hs_vf hs_vload_bf16(const uint16_t *p)
{
    __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(w, _mm512_set1_epi32(HS_VF32_ABS)),
                                            _mm512_set1_epi32(HS_VF32_INF));
    return _mm512_castsi512_ps(_mm512_mask_or_epi32(w, nan, w, _mm512_set1_epi32(HS_VF32_QUIET)));
}

static inline void hs_vstore_bf16(uint16_t *p, hs_vf v)
{
    __m512i b = _mm512_castps_si512(v), top = _mm512_srli_epi32(b, 16);
    __m512i lsb = _mm512_and_si512(top, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(HS_VF32_ABS)),
                                            _mm512_set1_epi32(HS_VF32_INF));
    r = _mm512_mask_or_epi32(r, nan, top, _mm512_set1_epi32(0x0040));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(r));
}

static inline hs_vf hs_vload_fp16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline void hs_vstore_fp16(uint16_t *p, hs_vf v)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#elif defined(HS_VEC16_AVX2)

#define HS_VLANES 8
typedef __m256 hs_vf;

static inline hs_vf hs_vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void hs_vstore(float *p, hs_vf v) { _mm256_storeu_ps(p, v); }
static inline hs_vf hs_vadd(hs_vf x, hs_vf y) { return _mm256_add_ps(x, y); }
static inline hs_vf hs_vdiv(hs_vf x, hs_vf y) { return _mm256_div_ps(x, y); }
static inline hs_vf hs_vset1(float s) { return _mm256_set1_ps(s); }

static inline hs_vf hs_vpick(hs_vf x, hs_vf y, int max)
{
    __m256 beats = max ? _mm256_cmp_ps(x, y, _CMP_GT_OQ) : _mm256_cmp_ps(x, y, _CMP_LT_OQ);
    return _mm256_blendv_ps(y, x, _mm256_or_ps(beats, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}

/* |x| bits above Inf's: a NaN. Both sides are below 2^31, so the signed
 * compare is the unsigned one. */
static inline __m256i hs_vnan_mask(__m256i bits)
{
    return _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(HS_VF32_ABS)), _mm256_set1_epi32(HS_VF32_INF));
}

static inline hs_vf hs_vload_bf16(const uint16_t *p)
{
    __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16);
    w = _mm256_or_si256(w, _mm256_and_si256(hs_vnan_mask(w), _mm256_set1_epi32(HS_VF32_QUIET)));
    return _mm256_castsi256_ps(w);
}

static inline void hs_vstore_bf16(uint16_t *p, hs_vf v)
{
    __m256i b = _mm256_castps_si256(v), top = _mm256_srli_epi32(b, 16);
    __m256i lsb = _mm256_and_si256(top, _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
    r = _mm256_blendv_epi8(r, _mm256_or_si256(top, _mm256_set1_epi32(0x0040)), hs_vnan_mask(b));
    /* Every lane is below 2^16, so the saturating pack is a plain narrowing. */
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128((__m128i *)p, h);
}

static inline hs_vf hs_vload_fp16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline void hs_vstore_fp16(uint16_t *p, hs_vf v)
{
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#else
#error "define HS_VEC16_AVX512 or HS_VEC16_AVX2 before including core/vec16.h"
#endif

#endif
