/* Per-level clones of hot loops, chosen per call by the level in use.
 *
 * A loop written once as an always_inline body is compiled three times,
 * for AVX-512 (x86-64-v4), AVX2 + FMA (x86-64-v3) and the build's baseline
 * (x86-64-v2); the vectoriser sizes each clone's loops to its registers.
 * Unlike GCC's target_clones (an ifunc resolved once at load time from the
 * CPU alone), the choice follows hs_cpu_isa(), so the HS_CPU_ISA cap and
 * hs_cpu_set_isa reach these loops too. */
#ifndef HS_CORE_ISA_H
#define HS_CORE_ISA_H

#include "hyperspeed/core.h"

/* Bodies are always_inline: GCC inlines a plain function into a clone built
 * for another target only when forced, and a call would stop the
 * vectorisation. */
#define HS_ISA_INLINE static inline __attribute__((always_inline))

/* HS_ISA_CLONES(opt, name, (params), (args)): given
 *     HS_ISA_INLINE void name##_body(params)
 * defines name_avx512, name_avx2, name_baseline (with the extra attribute
 * opt, e.g. optimize("no-trapping-math")) and
 *     static void name(params)
 * that calls the clone of the level in use. */
#define HS_ISA_CLONES(opt, name, params, args)                                                                        \
    __attribute__((target("arch=x86-64-v4"), opt)) static void name##_avx512 params { name##_body args; }             \
    __attribute__((target("arch=x86-64-v3"), opt)) static void name##_avx2 params { name##_body args; }               \
    __attribute__((opt)) static void name##_baseline params { name##_body args; }                                     \
    static void name params                                                                                            \
    {                                                                                                                  \
        switch (hs_cpu_isa()) {                                                                                        \
        case HS_ISA_AVX512: name##_avx512 args; break;                                                                 \
        case HS_ISA_AVX2: name##_avx2 args; break;                                                                     \
        default: name##_baseline args; break;                                                                         \
        }                                                                                                              \
    }

#endif
