/* Vector instructions on UB. Each processes n elements in repeats of
 * vector_bytes (256 B):
 *     cost = lats * lat_vector + mult * ceil(n * size / vector_bytes)
 * (lats = 1 and mult = 1 unless the op's table entry says otherwise; size
 * is the widest operand's). Float ops compute in fp32 and round the result
 * to the operands' dtype. */
#include "core/try.h"
#include "npu_sim/launch.h"

/* Cost multiples of one op: instructions issued and repeats per 256 B. */
typedef struct vop_cost {
    int lats, mult;
} vop_cost;

/* The cost multiples of op (see hs_npu_vop in isa.h). */
static vop_cost op_cost(hs_npu_vop op)
{
    switch (op) {
    case HS_V_DIV:
    case HS_V_EXP:
    case HS_V_LN:
    case HS_V_SQRT:
    case HS_V_RSQRT:
    case HS_V_RECIP: return (vop_cost){1, 2};
    case HS_V_TANH: return (vop_cost){6, 8}; /* muls, exp, adds, div, muls, adds: 1+2+1+2+1+1 repeats */
    default: return (vop_cost){1, 1};
    }
}

/* Cycles of a vector instruction over n elements of es bytes. */
static uint64_t vcost(const hs_npu_core *c, int64_t n, int64_t es, vop_cost k)
{
    const hs_npu_spec *s = &c->blk->dev->spec;
    return (uint64_t)k.lats * (uint64_t)s->lat_vector +
           (uint64_t)k.mult * (uint64_t)hs_npu_ceil_div(n * es, s->vector_bytes);
}

/* fp32, fp16 or bf16. */
static int is_float(hs_dtype dt)
{
    return dt == HS_FP32 || dt == HS_FP16 || dt == HS_BF16;
}

/* Checks n >= 1 and that views v[0..nv) are in UB with n elements each. */
static hs_status check_vec(const char *op, hs_npu_core *c, const hs_npu_local *v, int nv, int64_t n)
{
    if (n <= 0)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: n = %lld", op, (long long)n);
    for (int i = 0; i < nv; i++)
        HS_NPU_CHECK(c, hs_npu_check_view(op, c, v[i], HS_BUF_UB, n));
    return HS_OK;
}

/* Checks that views v[0..nv) share one float dtype. */
static hs_status check_float(const char *op, hs_npu_core *c, const hs_npu_local *v, int nv)
{
    for (int i = 0; i < nv; i++)
        if (!is_float(v[i].dtype) || v[i].dtype != v[0].dtype)
            return hs_npu_fail(c, HS_ERR_DTYPE, "%s: operands %s and %s (one of fp32, fp16, bf16 for all)", op,
                               hs_dtype_name(v[0].dtype), hs_dtype_name(v[i].dtype));
    return HS_OK;
}

/* Checks and issues a float elementwise op: v[0] is dst, v[1..nv) the
 * sources; dst is also read when dst_read. */
static hs_status float_op(const char *op, const hs_npu_local *v, int nv, int64_t n, vop_cost k, int dst_read)
{
    hs_npu_core *c = v[0].core;
    HS_NPU_ENTER(op, c);
    HS_NPU_CHECK(c, check_float(op, c, v, nv));
    HS_NPU_CHECK(c, check_vec(op, c, v, nv, n));
    return hs_npu_issue(op, c, HS_PIPE_VECTOR, vcost(c, n, (int64_t)hs_dtype_size(v[0].dtype), k),
                        dst_read ? v : v + 1, dst_read ? nv : nv - 1, v, 1);
}

/* Binary op op on fp32 values (max/min propagate NaN from x). */
static float bin(hs_npu_vop op, float x, float y)
{
    switch (op) {
    case HS_V_ADD: return x + y;
    case HS_V_SUB: return x - y;
    case HS_V_MUL: return x * y;
    case HS_V_DIV: return x / y;
    case HS_V_MAX: return x > y || x != x ? x : y;
    default: return x < y || x != x ? x : y; /* HS_V_MIN */
    }
}

/* dst = a op b, elementwise. */
hs_status hs_npu_vbin(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, hs_npu_local b, int64_t n)
{
    const hs_npu_local v[3] = {dst, a, b};
    if (dst.core && dst.core->blk->status == HS_OK && (op < HS_V_ADD || op > HS_V_MIN))
        return hs_npu_fail(dst.core, HS_ERR_INVALID_ARGUMENT, "vbin: op %d is not binary", (int)op);
    HS_TRY(float_op("vbin", v, 3, n, op_cost(op), 0));
    hs_npu_vector_body(HS_VB_BIN, op, 0.0f, dst, v + 1, 2, n);
    return HS_OK;
}

/* dst = op(a), elementwise. */
hs_status hs_npu_vunary(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, int64_t n)
{
    const hs_npu_local v[2] = {dst, a};
    if (dst.core && dst.core->blk->status == HS_OK && (op < HS_V_EXP || op > HS_V_COPY))
        return hs_npu_fail(dst.core, HS_ERR_INVALID_ARGUMENT, "vunary: op %d is not unary", (int)op);
    HS_TRY(float_op("vunary", v, 2, n, op_cost(op), 0));
    hs_npu_vector_body(HS_VB_UNARY, op, 0.0f, dst, v + 1, 1, n);
    return HS_OK;
}

/* dst = a op s, elementwise. */
hs_status hs_npu_vscalar(hs_npu_vop op, hs_npu_local dst, hs_npu_local a, float s, int64_t n)
{
    const hs_npu_local v[2] = {dst, a};
    if (dst.core && dst.core->blk->status == HS_OK && (op < HS_V_ADDS || op > HS_V_MINS))
        return hs_npu_fail(dst.core, HS_ERR_INVALID_ARGUMENT, "vscalar: op %d has no scalar form", (int)op);
    HS_TRY(float_op("vscalar", v, 2, n, op_cost(op), 0));
    hs_npu_vector_body(HS_VB_SCALAR, op, s, dst, v + 1, 1, n);
    return HS_OK;
}

/* dst += s * a. */
hs_status hs_npu_vaxpy(hs_npu_local dst, hs_npu_local a, float s, int64_t n)
{
    const hs_npu_local v[2] = {dst, a};
    HS_TRY(float_op("vaxpy", v, 2, n, (vop_cost){1, 1}, 1));
    hs_npu_vector_body(HS_VB_AXPY, HS_V_ADD, s, dst, v + 1, 1, n);
    return HS_OK;
}

/* dst += a * b. */
hs_status hs_npu_vmla(hs_npu_local dst, hs_npu_local a, hs_npu_local b, int64_t n)
{
    const hs_npu_local v[3] = {dst, a, b};
    HS_TRY(float_op("vmla", v, 3, n, (vop_cost){1, 1}, 1));
    hs_npu_vector_body(HS_VB_MLA, HS_V_ADD, 0.0f, dst, v + 1, 2, n);
    return HS_OK;
}

/* dst[i] = s. */
hs_status hs_npu_vdup(hs_npu_local dst, float s, int64_t n)
{
    HS_TRY(float_op("vdup", &dst, 1, n, (vop_cost){1, 1}, 0));
    hs_npu_vector_body(HS_VB_DUP, HS_V_ADD, s, dst, NULL, 0, n);
    return HS_OK;
}

/* dst[i] = a[0]. */
hs_status hs_npu_vbcast(hs_npu_local dst, hs_npu_local a, int64_t n)
{
    static const char op[] = "vbcast";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    const hs_npu_local v[2] = {dst, a};
    HS_NPU_CHECK(c, check_float(op, c, v, 2));
    HS_NPU_CHECK(c, check_vec(op, c, v, 1, n));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, a, HS_BUF_UB, 1));
    const uint64_t cost = vcost(c, n, (int64_t)hs_dtype_size(dst.dtype), (vop_cost){1, 1});
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_VECTOR, cost, &a, 1, &dst, 1));
    uint8_t *d = hs_npu_view_mem(dst);
    if (d) {
        const float x = hs_npu_ld(hs_npu_view_mem(a), a.dtype, 0);
        for (int64_t i = 0; i < n; i++)
            hs_npu_st(d, dst.dtype, i, x);
    }
    return HS_OK;
}

/* dst[i] = a[i] converted to dst's dtype. */
hs_status hs_npu_vcast(hs_npu_local dst, hs_npu_local a, int64_t n)
{
    static const char op[] = "vcast";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    const int ok_d = is_float(dst.dtype) || dst.dtype == HS_INT32, ok_a = is_float(a.dtype) || a.dtype == HS_INT32;
    if (!ok_d || !ok_a)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: %s -> %s (fp32, fp16, bf16, int32)", op, hs_dtype_name(a.dtype),
                           hs_dtype_name(dst.dtype));
    const hs_npu_local v[2] = {dst, a};
    HS_NPU_CHECK(c, check_vec(op, c, v, 2, n));
    const int64_t es = (int64_t)(hs_dtype_size(dst.dtype) > hs_dtype_size(a.dtype) ? hs_dtype_size(dst.dtype)
                                                                                    : hs_dtype_size(a.dtype));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_VECTOR, vcost(c, n, es, (vop_cost){1, 1}), &a, 1, &dst, 1));
    uint8_t *d = hs_npu_view_mem(dst);
    if (d && is_float(a.dtype) && is_float(dst.dtype)) {
        hs_npu_vector_cast(d, dst.dtype, hs_npu_view_mem(a), a.dtype, n);
        return HS_OK;
    }
    if (d) {
        const uint8_t *x = hs_npu_view_mem(a);
        for (int64_t i = 0; i < n; i++) {
            if (a.dtype == HS_INT32) { /* int32 -> float as C converts (exact in double) */
                int32_t iv;
                memcpy(&iv, x + 4 * i, 4);
                hs_npu_st(d, dst.dtype, i, (float)iv);
            } else if (dst.dtype == HS_INT32) {
                hs_npu_st(d, HS_INT32, i, hs_npu_ld(x, a.dtype, i));
            } else
                hs_npu_st(d, dst.dtype, i, hs_npu_ld(x, a.dtype, i));
        }
    }
    return HS_OK;
}

/* Reduction of n elements of a into dst[0]. Cost: levels of
 * lat_vector + ceil(e * size / vector_bytes), each leaving one partial
 * per repeat, from e = n until one value remains. */
static hs_status reduce(const char *op, hs_npu_local dst, hs_npu_local a, int64_t n, int is_max)
{
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    const hs_npu_local v[2] = {dst, a};
    HS_NPU_CHECK(c, check_float(op, c, v, 2));
    HS_NPU_CHECK(c, check_vec(op, c, &a, 1, n));
    HS_NPU_CHECK(c, hs_npu_check_view(op, c, dst, HS_BUF_UB, 1));
    const hs_npu_spec *s = &c->blk->dev->spec;
    const int64_t es = (int64_t)hs_dtype_size(a.dtype);
    uint64_t cost = 0;
    int64_t e = n;
    do {
        e = hs_npu_ceil_div(e * es, s->vector_bytes);
        cost += (uint64_t)s->lat_vector + (uint64_t)e;
    } while (e > 1);
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_VECTOR, cost, &a, 1, &dst, 1));
    uint8_t *d = hs_npu_view_mem(dst);
    if (d) {
        const uint8_t *x = hs_npu_view_mem(a);
        float r = hs_npu_ld(x, a.dtype, 0);
        for (int64_t i = 1; i < n; i++)
            r = is_max ? bin(HS_V_MAX, r, hs_npu_ld(x, a.dtype, i)) : r + hs_npu_ld(x, a.dtype, i);
        hs_npu_st(d, dst.dtype, 0, r);
    }
    return HS_OK;
}

/* dst[0] = sum of a[0..n). */
hs_status hs_npu_vreduce_sum(hs_npu_local dst, hs_npu_local a, int64_t n)
{
    return reduce("vreduce_sum", dst, a, n, 0);
}

/* dst[0] = max of a[0..n). */
hs_status hs_npu_vreduce_max(hs_npu_local dst, hs_npu_local a, int64_t n)
{
    return reduce("vreduce_max", dst, a, n, 1);
}

/* x cmp y as 0 or 1. */
static int compare(hs_npu_cmp cmp, float x, float y)
{
    switch (cmp) {
    case HS_CMP_LT: return x < y;
    case HS_CMP_LE: return x <= y;
    case HS_CMP_GT: return x > y;
    case HS_CMP_GE: return x >= y;
    case HS_CMP_EQ: return x == y;
    default: return x != y; /* HS_CMP_NE */
    }
}

/* Shared part of vcmp / vcmps: b is NULL for the scalar form. */
static hs_status cmp_op(const char *op, hs_npu_cmp cmp, hs_npu_local mask, hs_npu_local a, const hs_npu_local *b,
                        float s, int64_t n)
{
    hs_npu_core *c = mask.core;
    HS_NPU_ENTER(op, c);
    if (mask.dtype != HS_INT8 || cmp < HS_CMP_LT || cmp > HS_CMP_NE)
        return hs_npu_fail(c, HS_ERR_INVALID_ARGUMENT, "%s: the mask must be int8 and the comparison valid", op);
    const hs_npu_local v[3] = {a, b ? *b : a, mask};
    HS_NPU_CHECK(c, check_float(op, c, v, 2));
    HS_NPU_CHECK(c, check_vec(op, c, v, 3, n));
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_VECTOR, vcost(c, n, (int64_t)hs_dtype_size(a.dtype), (vop_cost){1, 1}),
                                 v, b ? 2 : 1, &mask, 1));
    uint8_t *d = hs_npu_view_mem(mask);
    if (d) {
        const uint8_t *x = hs_npu_view_mem(a), *y = b ? hs_npu_view_mem(*b) : NULL;
        for (int64_t i = 0; i < n; i++)
            d[i] = (uint8_t)compare(cmp, hs_npu_ld(x, a.dtype, i), y ? hs_npu_ld(y, b->dtype, i) : s);
    }
    return HS_OK;
}

/* mask[i] = a[i] cmp b[i]. */
hs_status hs_npu_vcmp(hs_npu_cmp cmp, hs_npu_local mask, hs_npu_local a, hs_npu_local b, int64_t n)
{
    return cmp_op("vcmp", cmp, mask, a, &b, 0.0f, n);
}

/* mask[i] = a[i] cmp s. */
hs_status hs_npu_vcmps(hs_npu_cmp cmp, hs_npu_local mask, hs_npu_local a, float s, int64_t n)
{
    return cmp_op("vcmps", cmp, mask, a, NULL, s, n);
}

/* dst[i] = mask[i] ? a[i] : b[i]. */
hs_status hs_npu_vselect(hs_npu_local dst, hs_npu_local mask, hs_npu_local a, hs_npu_local b, int64_t n)
{
    static const char op[] = "vselect";
    hs_npu_core *c = dst.core;
    HS_NPU_ENTER(op, c);
    if (mask.dtype != HS_INT8)
        return hs_npu_fail(c, HS_ERR_DTYPE, "%s: the mask must be int8, not %s", op, hs_dtype_name(mask.dtype));
    const hs_npu_local v[4] = {dst, a, b, mask};
    HS_NPU_CHECK(c, check_float(op, c, v, 3));
    HS_NPU_CHECK(c, check_vec(op, c, v, 4, n));
    const uint64_t cost = vcost(c, n, (int64_t)hs_dtype_size(dst.dtype), (vop_cost){1, 1});
    HS_NPU_CHECK(c, hs_npu_issue(op, c, HS_PIPE_VECTOR, cost, v + 1, 3, &dst, 1));
    uint8_t *d = hs_npu_view_mem(dst);
    if (d) {
        const uint8_t *m = hs_npu_view_mem(mask), *x = hs_npu_view_mem(a), *y = hs_npu_view_mem(b);
        for (int64_t i = 0; i < n; i++)
            hs_npu_st(d, dst.dtype, i, m[i] ? hs_npu_ld(x, a.dtype, i) : hs_npu_ld(y, b.dtype, i));
    }
    return HS_OK;
}
