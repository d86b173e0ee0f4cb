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

/* One loop per call shape: every argument but the pointers, n and avg_p is
 * a constant where the dispatcher below calls it, so each inlined copy has
 * its loads, stores and operation fixed and its constants out of the loop. */
static inline __attribute__((always_inline)) size_t combine_loop(void *dst, int dst_acc, const void *a, int a_acc,
                                                                 const void *b, int b_acc, size_t n, hs_dtype dt,
                                                                 hs_reduce_op op, int avg_p)
{
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

/* A sum (or average) of 16-bit dtype dt, one copy per fp32/16-bit mix of
 * the three operands. */
static inline __attribute__((always_inline)) size_t sum16(void *dst, int dst_acc, const void *a, int a_acc,
                                                          const void *b, int b_acc, size_t n, hs_dtype dt, int avg_p)
{
    const hs_reduce_op s = HS_REDUCE_SUM;
    switch (dst_acc << 2 | a_acc << 1 | b_acc) {
    case 0: return combine_loop(dst, 0, a, 0, b, 0, n, dt, s, avg_p);
    case 1: return combine_loop(dst, 0, a, 0, b, 1, n, dt, s, avg_p);
    case 2: return combine_loop(dst, 0, a, 1, b, 0, n, dt, s, avg_p);
    case 3: return combine_loop(dst, 0, a, 1, b, 1, n, dt, s, avg_p);
    case 4: return combine_loop(dst, 1, a, 0, b, 0, n, dt, s, avg_p);
    case 5: return combine_loop(dst, 1, a, 0, b, 1, n, dt, s, avg_p);
    case 6: return combine_loop(dst, 1, a, 1, b, 0, n, dt, s, avg_p);
    default: return combine_loop(dst, 1, a, 1, b, 1, n, dt, s, avg_p);
    }
}

size_t HS_COMBINE_FN(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                     hs_dtype dt, hs_reduce_op op, int avg_p)
{
    dst_acc = !!dst_acc;
    a_acc = !!a_acc;
    b_acc = !!b_acc;
    if (op == HS_REDUCE_MAX || op == HS_REDUCE_MIN) /* rare (flags, overflow checks): one general copy */
        return combine_loop(dst, dst_acc || dt == HS_FP32, a, a_acc || dt == HS_FP32, b, b_acc || dt == HS_FP32, n,
                            dt, op, avg_p);
    switch (dt) {
    case HS_FP32: return combine_loop(dst, 1, a, 1, b, 1, n, HS_FP32, HS_REDUCE_SUM, avg_p);
    case HS_BF16: return sum16(dst, dst_acc, a, a_acc, b, b_acc, n, HS_BF16, avg_p);
    default: return sum16(dst, dst_acc, a, a_acc, b, b_acc, n, HS_FP16, avg_p);
    }
}
