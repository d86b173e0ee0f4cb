/* hs_matmul_forward / hs_matmul_backward: argument checks and dispatch. */
#include "core/try.h"
#include "kernels/cpu/dense.h"

#include <limits.h>

/* inp[N,C] and w[OC,C], both fp32 or both bf16, with sizes OpenBLAS's
 * 32-bit ints can index. */
static hs_status check_operands(const char *op, const hs_tensor *inp, const hs_tensor *w)
{
    const hs_dtype dt = inp && inp->dtype == HS_BF16 ? HS_BF16 : HS_FP32;
    HS_TRY(hs_check_tensor(op, "inp", inp, dt, 2, NULL));
    HS_TRY(hs_check_tensor(op, "w", w, dt, 2, HS_DIMS(-1, inp->shape[1])));
    if (inp->shape[0] > INT_MAX || inp->shape[1] > INT_MAX || w->shape[0] > INT_MAX)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: N=%lld, C=%lld, OC=%lld: each must be at most %d", op,
                        (long long)inp->shape[0], (long long)inp->shape[1], (long long)w->shape[0], INT_MAX);
    return HS_OK;
}

hs_status hs_matmul_forward(hs_tensor *out, const hs_tensor *inp, const hs_tensor *w, const hs_tensor *bias)
{
    static const char op[] = "hs_matmul_forward";
    HS_TRY(check_operands(op, inp, w));
    const int64_t N = inp->shape[0], C = inp->shape[1], OC = w->shape[0];
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, 2, HS_DIMS(N, OC)));
    HS_TRY(hs_check_optional(op, "bias", bias, HS_FP32, 1, HS_DIMS(OC)));
    return hs_cpu_matmul_forward(out->data, inp->data, w->data, bias ? bias->data : NULL, N, C, OC, inp->dtype);
}

hs_status hs_matmul_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *dbias, const hs_tensor *dout,
                             const hs_tensor *inp, const hs_tensor *w)
{
    static const char op[] = "hs_matmul_backward";
    HS_TRY(check_operands(op, inp, w));
    const int64_t N = inp->shape[0], C = inp->shape[1], OC = w->shape[0];
    HS_TRY(hs_check_tensor(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, OC)));
    HS_TRY(hs_check_optional(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "dw", dw, HS_FP32, 2, HS_DIMS(OC, C)));
    HS_TRY(hs_check_optional(op, "dbias", dbias, HS_FP32, 1, HS_DIMS(OC)));
    return hs_cpu_matmul_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, dbias ? dbias->data : NULL,
                                  dout->data, inp->data, w->data, N, C, OC, inp->dtype);
}
