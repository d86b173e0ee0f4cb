/* Element-wise reduction of one step of a reduce-scatter. 16-bit floats
 * are widened to fp32, combined, and rounded only when the destination is
 * the final 16-bit result, so every element is rounded once. Float dtypes
 * go through the vector step of the level hs_cpu_isa() gives
 * (reduce_simd.h) and the portable loops here for the tail, or for all of
 * it on a baseline CPU. */
#include "comm/comm_internal.h"

#include <string.h>

#define TILE 1024

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

size_t hs_comm_acc_size(hs_dtype dt)
{
    return dt == HS_BF16 || dt == HS_FP16 ? sizeof(float) : hs_dtype_size(dt);
}

hs_comm_combine_fn *hs_comm_combine_for(hs_isa isa)
{
    switch (isa) {
    case HS_ISA_AVX512: return hs_comm_combine_avx512;
    case HS_ISA_AVX2: return hs_comm_combine_avx2;
    default: return NULL;
    }
}

/* NaN-propagating max/min: x wins when it is NaN or beats y. */
static v4f pick(v4f x, v4f y, v4i x_wins)
{
    v4i m = x_wins | (x != x);
    return (v4f)(((v4i)x & m) | ((v4i)y & ~m));
}

static void combine_f32(float *d, const float *a, const float *b, size_t n, hs_reduce_op op, int avg_p)
{
    size_t i = 0;
    float divisor = (float)avg_p;
    for (; i + 4 <= n; i += 4) {
        v4f x, y, z;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        if (op == HS_REDUCE_MAX)
            z = pick(x, y, x > y);
        else if (op == HS_REDUCE_MIN)
            z = pick(x, y, x < y);
        else
            z = x + y;
        if (avg_p)
            z = z / divisor;
        memcpy(d + i, &z, sizeof z);
    }
    for (; i < n; i++) {
        float x = a[i], y = b[i], z;
        if (op == HS_REDUCE_MAX)
            z = (x > y || x != x) ? x : y;
        else if (op == HS_REDUCE_MIN)
            z = (x < y || x != x) ? x : y;
        else
            z = x + y;
        d[i] = avg_p ? z / divisor : z;
    }
}

/* fp32 view of elements [i, i + m) of x: in place when x already holds
 * fp32 values, else widened into tmp. */
static const float *widen(const void *x, int acc, size_t i, size_t m, hs_dtype dt, float *tmp)
{
    if (dt == HS_FP32 || acc)
        return (const float *)x + i;
    if (dt == HS_BF16)
        hs_convert_bf16_to_fp32(tmp, (const uint16_t *)x + i, m);
    else
        hs_convert_fp16_to_fp32(tmp, (const uint16_t *)x + i, m);
    return tmp;
}

static void combine_float(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                          hs_dtype dt, hs_reduce_op op, int avg_p)
{
    float ta[TILE], tb[TILE], td[TILE];
    hs_comm_combine_fn *vec = hs_comm_combine_for(hs_cpu_isa());
    size_t start = vec ? vec(dst, dst_acc, a, a_acc, b, b_acc, n, dt, op, avg_p) : 0;
    for (size_t i = start; i < n; i += TILE) {
        size_t m = n - i < TILE ? n - i : TILE;
        const float *pa = widen(a, a_acc, i, m, dt, ta);
        const float *pb = widen(b, b_acc, i, m, dt, tb);
        int wide_dst = dt == HS_FP32 || dst_acc;
        float *pd = wide_dst ? (float *)dst + i : td;
        combine_f32(pd, pa, pb, m, op, avg_p);
        if (wide_dst)
            continue;
        if (dt == HS_BF16)
            hs_convert_fp32_to_bf16((uint16_t *)dst + i, td, m);
        else
            hs_convert_fp32_to_fp16((uint16_t *)dst + i, td, m);
    }
}

/* Integer sums wrap (computed unsigned); the result is the same on every
 * rank either way. */
#define COMBINE_INT(T, U)                                                                                              \
    static void combine_##T(T *d, const T *a, const T *b, size_t n, hs_reduce_op op)                                  \
    {                                                                                                                  \
        for (size_t i = 0; i < n; i++) {                                                                               \
            T x = a[i], y = b[i];                                                                                      \
            if (op == HS_REDUCE_MAX)                                                                                   \
                d[i] = x > y ? x : y;                                                                                  \
            else if (op == HS_REDUCE_MIN)                                                                              \
                d[i] = x < y ? x : y;                                                                                  \
            else                                                                                                       \
                d[i] = (T)((U)x + (U)y);                                                                               \
        }                                                                                                              \
    }
COMBINE_INT(int32_t, uint32_t)
COMBINE_INT(int64_t, uint64_t)

void hs_comm_combine(void *dst, int dst_acc, const void *a, int a_acc, const void *b, int b_acc, size_t n,
                     hs_dtype dt, hs_reduce_op op, int final_p)
{
    int avg_p = final_p > 0 && op == HS_REDUCE_AVG ? final_p : 0;
    switch (dt) {
    case HS_INT32: combine_int32_t(dst, a, b, n, op); break;
    case HS_INT64: combine_int64_t(dst, a, b, n, op); break;
    default: combine_float(dst, dst_acc, a, a_acc, b, b_acc, n, dt, op, avg_p); break;
    }
}
