/* mmad's fp32 kernel for the avx512 level (mmad_f32.h). */
#pragma GCC target("arch=x86-64-v4")
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#define HS_MMAD_W 16
#define HS_MMAD_R 16
#define HS_MMAD_FN hs_npu_mmad_f32_avx512
#include "npu_sim/mmad_f32.h"
