/* mmad's fp32 kernel for the avx2 level (mmad_f32.h). */
#pragma GCC target("arch=x86-64-v3")
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#define HS_MMAD_W 8
#define HS_MMAD_R 6
#define HS_MMAD_FN hs_npu_mmad_f32_avx2
#include "npu_sim/mmad_f32.h"
