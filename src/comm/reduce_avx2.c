/* The float reduction step for AVX2 + F16C (x86-64-v3). */
#pragma GCC target("arch=x86-64-v3")
#define HS_VEC16_AVX2
#define HS_COMBINE_FN hs_comm_combine_avx2
#include "comm/reduce_simd.h"
