/* hs_bias_gelu_forward / hs_bias_gelu_backward: argument checks and
 * dispatch on the device of x (CPU body, or the NPU kernels). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

hs_status hs_bias_gelu_forward(hs_tensor *out, const hs_tensor *x, const hs_tensor *bias)
{
    static const char op[] = "hs_bias_gelu_forward";
    const hs_device *dev = x ? x->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "x", x, HS_FP32, 2, NULL, dev));
    const int64_t N = x->shape[0], C = x->shape[1];
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "bias", bias, HS_FP32, 1, HS_DIMS(C), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_bias_gelu_forward(dev, out->data, x->data, bias ? bias->data : NULL, N, C);
    hs_cpu_bias_gelu_forward(out->data, x->data, bias ? bias->data : NULL, N, C);
    return HS_OK;
}

hs_status hs_bias_gelu_backward(hs_tensor *dx, hs_tensor *dbias, const hs_tensor *dout, const hs_tensor *x,
                                const hs_tensor *bias)
{
    static const char op[] = "hs_bias_gelu_backward";
    const hs_device *dev = x ? x->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "x", x, HS_FP32, 2, NULL, dev));
    const int64_t N = x->shape[0], C = x->shape[1];
    HS_TRY(hs_check_tensor_on(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "bias", bias, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(hs_check_optional_on(op, "dx", dx, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "dbias", dbias, HS_FP32, 1, HS_DIMS(C), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_bias_gelu_backward(dev, dx ? dx->data : NULL, dbias ? dbias->data : NULL, dout->data, x->data,
                                         bias ? bias->data : NULL, N, C);
    hs_cpu_bias_gelu_backward(dx ? dx->data : NULL, dbias ? dbias->data : NULL, dout->data, x->data,
                              bias ? bias->data : NULL, N, C);
    return HS_OK;
}
