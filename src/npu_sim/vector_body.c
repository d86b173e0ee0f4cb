/* Functional bodies of the elementwise vector instructions (isa_vector.c
 * checks and costs them). fp32 operands are computed in place with
 * vectorised loops; fp16/bf16 operands go through fp32 chunks (widen,
 * compute, round to nearest even), which is what the per-element rule
 * "compute in fp32, round the result to the operands' dtype" gives. The
 * transcendental ops are libm's (expf, logf, tanhf). */
#include "npu_sim/launch.h"

#include <math.h>

/* Elements of one fp32 staging chunk of a 16-bit operand. */
#define CHUNK 512

/* Every case of the switch is a plain elementwise loop. */
#define EACH(expr)                                                                                                     \
    do {                                                                                                               \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = (expr);                                             \
    } while (0)

/* max/min that return x when x is NaN (and y when only y is). */
#define VMAX(a, b) ((a) > (b) || (a) != (a) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) || (a) != (a) ? (a) : (b))

/* The body over fp32 arrays. d may be x or y (the same element is read
 * before it is written) but must not overlap them otherwise. */
HS_ISA_INLINE void body_f32_body(hs_npu_vbody kind, hs_npu_vop op, float s, float *d, const float *x, const float *y,
                                 int64_t n)
{
    switch (kind) {
    case HS_VB_BIN:
        switch (op) {
        case HS_V_ADD: EACH(x[i] + y[i]); return;
        case HS_V_SUB: EACH(x[i] - y[i]); return;
        case HS_V_MUL: EACH(x[i] * y[i]); return;
        case HS_V_DIV: EACH(x[i] / y[i]); return;
        case HS_V_MAX: EACH(VMAX(x[i], y[i])); return;
        default: EACH(VMIN(x[i], y[i])); return;
        }
    case HS_VB_SCALAR:
        switch (op) {
        case HS_V_ADDS: EACH(x[i] + s); return;
        case HS_V_MULS: EACH(x[i] * s); return;
        case HS_V_MAXS: EACH(VMAX(x[i], s)); return;
        default: EACH(VMIN(x[i], s)); return;
        }
    case HS_VB_UNARY:
        switch (op) {
        case HS_V_EXP: EACH(expf(x[i])); return;
        case HS_V_LN: EACH(logf(x[i])); return;
        case HS_V_SQRT: EACH(sqrtf(x[i])); return;
        case HS_V_RSQRT: EACH(1.0f / sqrtf(x[i])); return;
        case HS_V_RECIP: EACH(1.0f / x[i]); return;
        case HS_V_TANH: EACH(tanhf(x[i])); return;
        case HS_V_ABS: EACH(fabsf(x[i])); return;
        case HS_V_RELU: EACH(x[i] > 0.0f ? x[i] : 0.0f); return;
        default: EACH(x[i]); return;
        }
    case HS_VB_AXPY: EACH(d[i] + s * x[i]); return;
    case HS_VB_MLA: EACH(d[i] + x[i] * y[i]); return;
    default: EACH(s); return; /* HS_VB_DUP */
    }
}

HS_NPU_CLONES(body_f32,
              (hs_npu_vbody kind, hs_npu_vop op, float s, float *d, const float *x, const float *y, int64_t n),
              (kind, op, s, d, x, y, n))

/* n elements of dtype dt at m as fp32 into out. */
static void widen(float *out, const uint8_t *m, hs_dtype dt, int64_t n)
{
    uint16_t h[CHUNK];
    memcpy(h, m, (size_t)n * 2);
    if (dt == HS_BF16)
        hs_convert_bf16_to_fp32(out, h, (size_t)n);
    else
        hs_convert_fp16_to_fp32(out, h, (size_t)n);
}

/* n fp32 values rounded to dtype dt at m. */
static void narrow(uint8_t *m, const float *in, hs_dtype dt, int64_t n)
{
    uint16_t h[CHUNK];
    if (dt == HS_BF16)
        hs_convert_fp32_to_bf16(h, in, (size_t)n);
    else
        hs_convert_fp32_to_fp16(h, in, (size_t)n);
    memcpy(m, h, (size_t)n * 2);
}

/* 1 when [a, a + n) and [b, b + n) overlap without being the same range. */
static int skewed(const uint8_t *a, const uint8_t *b, int64_t n)
{
    return b && a != b && a < b + n && b < a + n;
}

void hs_npu_vector_body(hs_npu_vbody kind, hs_npu_vop op, float s, hs_npu_local dst, const hs_npu_local *src,
                        int nsrc, int64_t n)
{
    uint8_t *d = hs_npu_view_mem(dst);
    if (!d)
        return;
    const uint8_t *x = nsrc > 0 ? hs_npu_view_mem(src[0]) : NULL, *y = nsrc > 1 ? hs_npu_view_mem(src[1]) : NULL;
    const int64_t es = (int64_t)hs_dtype_size(dst.dtype);
    if (dst.dtype == HS_FP32 && !skewed(d, x, n * es) && !skewed(d, y, n * es)) {
        body_f32(kind, op, s, (float *)(void *)d, (const float *)(const void *)x, (const float *)(const void *)y, n);
        return;
    }
    float bd[CHUNK], bx[CHUNK], by[CHUNK];
    const int reads_dst = kind == HS_VB_AXPY || kind == HS_VB_MLA;
    for (int64_t at = 0; at < n; at += CHUNK) {
        const int64_t len = n - at < CHUNK ? n - at : CHUNK, off = at * es;
        if (dst.dtype == HS_FP32) { /* overlapping fp32 operands: staged copies */
            if (x)
                memcpy(bx, x + off, (size_t)(len * 4));
            if (y)
                memcpy(by, y + off, (size_t)(len * 4));
            if (reads_dst)
                memcpy(bd, d + off, (size_t)(len * 4));
            body_f32(kind, op, s, bd, bx, by, len);
            memcpy(d + off, bd, (size_t)(len * 4));
            continue;
        }
        if (x)
            widen(bx, x + off, dst.dtype, len);
        if (y)
            widen(by, y + off, dst.dtype, len);
        if (reads_dst)
            widen(bd, d + off, dst.dtype, len);
        body_f32(kind, op, s, bd, bx, by, len);
        narrow(d + off, bd, dst.dtype, len);
    }
}

void hs_npu_vector_cast(uint8_t *d, hs_dtype dt, const uint8_t *x, hs_dtype xt, int64_t n)
{
    float buf[CHUNK];
    const int64_t ds = (int64_t)hs_dtype_size(dt), xs = (int64_t)hs_dtype_size(xt);
    for (int64_t at = 0; at < n; at += CHUNK) {
        const int64_t len = n - at < CHUNK ? n - at : CHUNK;
        if (xt == HS_FP32)
            memcpy(buf, x + at * xs, (size_t)len * 4);
        else
            widen(buf, x + at * xs, xt, len);
        if (dt == HS_FP32)
            memcpy(d + at * ds, buf, (size_t)len * 4);
        else
            narrow(d + at * ds, buf, dt, len);
    }
}
