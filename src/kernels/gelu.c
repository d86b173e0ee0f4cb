/* hs_bias_gelu_forward / hs_bias_gelu_backward: argument checks and dispatch. */
#include "core/try.h"
#include "kernels/cpu/dense.h"

hs_status hs_bias_gelu_forward(hs_tensor *out, const hs_tensor *x, const hs_tensor *bias)
{
    static const char op[] = "hs_bias_gelu_forward";
    HS_TRY(hs_check_tensor(op, "x", x, HS_FP32, 2, NULL));
    const int64_t N = x->shape[0], C = x->shape[1];
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "bias", bias, HS_FP32, 1, HS_DIMS(C)));
    hs_cpu_bias_gelu_forward(out->data, x->data, bias ? bias->data : NULL, N, C);
    return HS_OK;
}

hs_status hs_bias_gelu_backward(hs_tensor *dx, hs_tensor *dbias, const hs_tensor *dout, const hs_tensor *x,
                                const hs_tensor *bias)
{
    static const char op[] = "hs_bias_gelu_backward";
    HS_TRY(hs_check_tensor(op, "x", x, HS_FP32, 2, NULL));
    const int64_t N = x->shape[0], C = x->shape[1];
    HS_TRY(hs_check_tensor(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "bias", bias, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(hs_check_optional(op, "dx", dx, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "dbias", dbias, HS_FP32, 1, HS_DIMS(C)));
    hs_cpu_bias_gelu_backward(dx ? dx->data : NULL, dbias ? dbias->data : NULL, dout->data, x->data,
                              bias ? bias->data : NULL, N, C);
    return HS_OK;
}
