/* The bulk 16-bit conversions for AVX2 + F16C (x86-64-v3). */
#pragma GCC target("arch=x86-64-v3")
#define HS_VEC16_AVX2
#define HS_CONVERT_TABLE hs_convert_avx2
#include "core/convert_simd.h"
