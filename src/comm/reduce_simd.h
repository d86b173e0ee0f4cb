/* The float reduction step written once against core/vec16.h: widen both
 * inputs, combine and (for a final 16-bit result) round, a vector at a time
 * in registers, instead of reduce.c's three passes over fp32 tiles.
 * Included by reduce_avx512.c and reduce_avx2.c, each compiled for its
 * level, which name the function HS_COMBINE_FN. Bit-identical to reduce.c's
 * portable step: core/vec16.h rounds as src/core/dtype.c does, and the adds,
 * max/min and the AVG division are the same IEEE operations lane by lane. */
#include "comm/comm_internal.h"
#include "core/vec16.h"

/* Element i of x as fp32: x holds fp32 (acc) or dt's 16-bit values. */
static inline hs_vf load(const void *x, int acc, size_t i, hs_dtype dt)
{
    if (acc)
        return hs_vload((const float *)x + i);
    return dt == HS_BF16 ? hs_vload_bf16((const uint16_t *)x + i) : hs_vload_fp16((const uint16_t *)x + i);
}

static inline void store(void *d, int acc, size_t i, hs_dtype dt, hs_vf v)
{
    if (acc)
        hs_vstore((float *)d + i, v);
    else if (dt == HS_BF16)
        hs_vstore_bf16((uint16_t *)d + i, v);
    else
        hs_vstore_fp16((uint16_t *)d + i, v);
}

size_t HS_COMBINE_FN(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                     hs_dtype dt, hs_reduce_op op, int avg_p)
{
    if (dt == HS_FP32)
        dst_acc = a_acc = b_acc = 1;
    const hs_vf divisor = hs_vset1((float)avg_p);
    size_t i = 0;
    for (; i + HS_VLANES <= n; i += HS_VLANES) {
        hs_vf x = load(a, a_acc, i, dt), y = load(b, b_acc, i, dt), z;
        if (op == HS_REDUCE_MAX || op == HS_REDUCE_MIN)
            z = hs_vpick(x, y, op == HS_REDUCE_MAX);
        else
            z = hs_vadd(x, y);
        if (avg_p)
            z = hs_vdiv(z, divisor);
        store(dst, dst_acc, i, dt, z);
    }
    return i;
}
