/* The bulk 16-bit conversions for AVX-512 (x86-64-v4). */
#pragma GCC target("arch=x86-64-v4")
#define HS_VEC16_AVX512
#define HS_CONVERT_TABLE hs_convert_avx512
#include "core/convert_simd.h"
