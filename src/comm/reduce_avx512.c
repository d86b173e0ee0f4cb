/* The float reduction step for AVX-512 (x86-64-v4). */
#pragma GCC target("arch=x86-64-v4")
#define HS_VEC16_AVX512
#define HS_COMBINE_FN hs_comm_combine_avx512
#include "comm/reduce_simd.h"
