/* SwiGLU entry points: argument checks, then the body of inp's device
 * (CPU, or the NPU kernels for NPU tensors). */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"
#include "kernels/npu/npu_kernels.h"

/* inp must be [N, 2F]; sets N and F. */
static hs_status swiglu_dims(const char *op, const hs_tensor *inp, int64_t *N, int64_t *F)
{
    hs_status s = hs_check_tensor_on(op, "inp", inp, HS_FP32, 2, NULL, inp ? inp->device : NULL);
    if (s)
        return s;
    if (inp->shape[1] % 2)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: inp dim 1 is %lld; it must be even ([gate | up])", op,
                        (long long)inp->shape[1]);
    *N = inp->shape[0];
    *F = inp->shape[1] / 2;
    return HS_OK;
}

hs_status hs_swiglu_forward(hs_tensor *out, const hs_tensor *inp)
{
    int64_t N, F;
    hs_status s;
    if ((s = swiglu_dims(__func__, inp, &N, &F)) ||
        (s = hs_check_tensor_on(__func__, "out", out, HS_FP32, 2, HS_DIMS(N, F), inp->device)))
        return s;
    if (hs_tensor_device_kind(inp) == HS_DEVICE_NPU)
        return hs_npu_swiglu_forward(inp->device, out->data, inp->data, N, F);
    hs_cpu_swiglu_forward(out->data, inp->data, N, F);
    return HS_OK;
}

hs_status hs_swiglu_backward(hs_tensor *dinp, const hs_tensor *dout, const hs_tensor *inp)
{
    int64_t N, F;
    hs_status s;
    if ((s = swiglu_dims(__func__, inp, &N, &F)) ||
        (s = hs_check_optional_on(__func__, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, 2 * F), inp->device)) ||
        (s = hs_check_tensor_on(__func__, "dout", dout, HS_FP32, 2, HS_DIMS(N, F), inp->device)))
        return s;
    if (dinp && hs_tensor_device_kind(inp) == HS_DEVICE_NPU)
        return hs_npu_swiglu_backward(inp->device, dinp->data, dout->data, inp->data, N, F);
    if (dinp)
        hs_cpu_swiglu_backward(dinp->data, dout->data, inp->data, N, F);
    return HS_OK;
}
