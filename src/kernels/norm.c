/* LayerNorm and RMSNorm entry points: argument checks and dispatch on the
 * device of inp (the CPU bodies, or the NPU kernels for NPU tensors). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

#include <math.h>

static hs_status check_eps(const char *op, float eps)
{
    if (!(eps >= 0.0f) || isinf(eps))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: eps=%g must be finite and >= 0", op, (double)eps);
    return HS_OK;
}

hs_status hs_layernorm_forward(hs_tensor *out, hs_tensor *mean, hs_tensor *rstd, const hs_tensor *inp,
                               const hs_tensor *w, const hs_tensor *b, float eps)
{
    static const char op[] = "hs_layernorm_forward";
    const hs_device *dev = inp ? inp->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "inp", inp, HS_FP32, 2, NULL, dev));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "mean", mean, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_optional_on(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_tensor_on(op, "w", w, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(hs_check_tensor_on(op, "b", b, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(check_eps(op, eps));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_layernorm_forward(dev, out->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, inp->data,
                                        w->data, b->data, eps, N, C);
    hs_cpu_layernorm_forward(out->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, inp->data, w->data,
                             b->data, eps, N, C);
    return HS_OK;
}

hs_status hs_layernorm_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *db, const hs_tensor *dout,
                                const hs_tensor *inp, const hs_tensor *w, const hs_tensor *mean,
                                const hs_tensor *rstd)
{
    static const char op[] = "hs_layernorm_backward";
    const hs_device *dev = inp ? inp->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "inp", inp, HS_FP32, 2, NULL, dev));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor_on(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_tensor_on(op, "w", w, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(hs_check_tensor_on(op, "mean", mean, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_tensor_on(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_optional_on(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "dw", dw, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(hs_check_optional_on(op, "db", db, HS_FP32, 1, HS_DIMS(C), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_layernorm_backward(dev, dinp ? dinp->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL,
                                         dout->data, inp->data, w->data, mean->data, rstd->data, N, C);
    return hs_cpu_layernorm_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL,
                                     dout->data, inp->data, w->data, mean->data, rstd->data, N, C);
}

hs_status hs_rmsnorm_forward(hs_tensor *out, hs_tensor *rstd, const hs_tensor *inp, const hs_tensor *w, float eps)
{
    static const char op[] = "hs_rmsnorm_forward";
    const hs_device *dev = inp ? inp->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "inp", inp, HS_FP32, 2, NULL, dev));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_tensor_on(op, "w", w, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(check_eps(op, eps));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_rmsnorm_forward(dev, out->data, rstd ? rstd->data : NULL, inp->data, w->data, eps, N, C);
    hs_cpu_rmsnorm_forward(out->data, rstd ? rstd->data : NULL, inp->data, w->data, eps, N, C);
    return HS_OK;
}

hs_status hs_rmsnorm_backward(hs_tensor *dinp, hs_tensor *dw, const hs_tensor *dout, const hs_tensor *inp,
                              const hs_tensor *w, const hs_tensor *rstd)
{
    static const char op[] = "hs_rmsnorm_backward";
    const hs_device *dev = inp ? inp->device : NULL;
    HS_TRY(hs_check_tensor_on(op, "inp", inp, HS_FP32, 2, NULL, dev));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor_on(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_tensor_on(op, "w", w, HS_FP32, 1, HS_DIMS(C), dev));
    HS_TRY(hs_check_tensor_on(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N), dev));
    HS_TRY(hs_check_optional_on(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C), dev));
    HS_TRY(hs_check_optional_on(op, "dw", dw, HS_FP32, 1, HS_DIMS(C), dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_rmsnorm_backward(dev, dinp ? dinp->data : NULL, dw ? dw->data : NULL, dout->data, inp->data,
                                       w->data, rstd->data, N, C);
    return hs_cpu_rmsnorm_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, dout->data, inp->data, w->data,
                                   rstd->data, N, C);
}
