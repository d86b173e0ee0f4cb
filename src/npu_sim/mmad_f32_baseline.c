/* mmad's fp32 kernel for the baseline level (mmad_f32.h). */
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#define HS_MMAD_W 4
#define HS_MMAD_R 2
#define HS_MMAD_FN hs_npu_mmad_f32_baseline
#include "npu_sim/mmad_f32.h"
