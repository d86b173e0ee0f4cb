/* hs_matmul_forward / hs_matmul_backward: argument checks and dispatch to
 * the CPU body or, for tensors on the NPU, the cube kernel. */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

#include <limits.h>

/* inp[N,C] and w[OC,C] on one device: on the CPU both fp32 or both bf16;
 * on the NPU both fp16 or both bf16 (the cube's input types). Sizes must
 * fit 32-bit ints (OpenBLAS's indices, the NPU kernel's tile loops). */
static hs_status check_operands(const char *op, const hs_tensor *inp, const hs_tensor *w)
{
    if (!inp || !inp->data)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: inp is NULL", op);
    const hs_device *dev = inp->device;
    hs_dtype dt = inp->dtype == HS_BF16 ? HS_BF16 : HS_FP32;
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU) {
        if (inp->dtype != HS_FP16 && inp->dtype != HS_BF16) {
            HS_TRY(hs_check_tensor_on(op, "w", w, w ? w->dtype : HS_FP32, 2, NULL, dev)); /* mixed devices first */
            return hs_error(HS_ERR_DTYPE, "%s: inp is %s on the NPU; the cube takes fp16 or bf16 (cast it first)", op,
                            hs_dtype_name(inp->dtype));
        }
        dt = inp->dtype;
    }
    HS_TRY(hs_check_tensor_on(op, "inp", inp, dt, 2, NULL, dev));
    HS_TRY(hs_check_tensor_on(op, "w", w, dt, 2, HS_DIMS(-1, inp->shape[1]), dev));
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
    const hs_device *dev = inp->device;
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, 2, HS_DIMS(N, OC), dev));
    HS_TRY(hs_check_optional_on(op, "bias", bias, HS_FP32, 1, HS_DIMS(OC), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_matmul_forward(dev, out->data, inp->data, w->data, bias ? bias->data : NULL, N, C, OC, inp->dtype);
    return hs_cpu_matmul_forward(out->data, inp->data, w->data, bias ? bias->data : NULL, N, C, OC, inp->dtype);
}

hs_status hs_matmul_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *dbias, const hs_tensor *dout,
                             const hs_tensor *inp, const hs_tensor *w)
{
    static const char op[] = "hs_matmul_backward";
    HS_TRY(check_operands(op, inp, w));
    const int64_t N = inp->shape[0], C = inp->shape[1], OC = w->shape[0];
    const hs_device *dev = inp->device;
    HS_TRY(hs_check_tensor_on(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, OC), dev));
    HS_TRY(hs_check_optional_on(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "dw", dw, HS_FP32, 2, HS_DIMS(OC, C), dev));
    HS_TRY(hs_check_optional_on(op, "dbias", dbias, HS_FP32, 1, HS_DIMS(OC), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_matmul_backward(dev, dinp ? dinp->data : NULL, dw ? dw->data : NULL, dbias ? dbias->data : NULL,
                                      dout->data, inp->data, w->data, N, C, OC, inp->dtype);
    return hs_cpu_matmul_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, dbias ? dbias->data : NULL,
                                  dout->data, inp->data, w->data, N, C, OC, inp->dtype);
}
