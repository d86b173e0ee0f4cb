/* AVX-512 body of the 16-bit reduction step: widen both inputs, combine
 * and (for a final 16-bit result) round, 16 lanes at a time in registers,
 * instead of three passes over fp32 tiles. Bit-identical to reduce.c's
 * portable path: bf16 widens by a shift with NaNs quieted and narrows by
 * adding 0x7fff + lsb (NaN: top half with the quiet bit), as
 * hs_bf16_to_fp32 / hs_fp32_to_bf16 define; fp16 uses vcvtph2ps and
 * vcvtps2ph with an explicit round-to-nearest-even, as src/core does. */
#include "comm/comm_internal.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 static __m512 load(const void *x, int acc, size_t i, hs_dtype dt)
{
    if (acc)
        return _mm512_loadu_ps((const float *)x + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i));
    if (dt == HS_FP16)
        return _mm512_cvtph_ps(h);
    __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(w, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_castsi512_ps(_mm512_mask_or_epi32(w, nan, w, _mm512_set1_epi32(0x00400000)));
}

AVX512 static void store(void *d, int acc, size_t i, hs_dtype dt, __m512 v)
{
    if (acc) {
        _mm512_storeu_ps((float *)d + i, v);
        return;
    }
    __m256i *p = (__m256i *)((uint16_t *)d + i);
    if (dt == HS_FP16) {
        _mm256_storeu_si256(p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return;
    }
    __m512i b = _mm512_castps_si512(v), top = _mm512_srli_epi32(b, 16);
    __m512i lsb = _mm512_and_si512(top, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, top, _mm512_set1_epi32(0x0040));
    _mm256_storeu_si256(p, _mm512_cvtepi32_epi16(r));
}

AVX512 static size_t combine16(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                               hs_dtype dt, hs_reduce_op op, int avg_p)
{
    const __m512 divisor = _mm512_set1_ps((float)avg_p);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = load(a, a_acc, i, dt), y = load(b, b_acc, i, dt), z;
        if (op == HS_REDUCE_MAX || op == HS_REDUCE_MIN) {
            __mmask16 beats = op == HS_REDUCE_MAX ? _mm512_cmp_ps_mask(x, y, _CMP_GT_OQ)
                                                  : _mm512_cmp_ps_mask(x, y, _CMP_LT_OQ);
            __mmask16 wins = beats | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            z = _mm512_mask_blend_ps(wins, y, x);
        } else {
            z = _mm512_add_ps(x, y);
        }
        if (avg_p)
            z = _mm512_div_ps(z, divisor);
        store(dst, dst_acc, i, dt, z);
    }
    return i;
}

size_t hs_comm_combine16_avx512(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                                hs_dtype dt, hs_reduce_op op, int avg_p)
{
    if (!__builtin_cpu_supports("avx512f"))
        return 0;
    return combine16(dst, dst_acc, a, a_acc, b, b_acc, n, dt, op, avg_p);
}
