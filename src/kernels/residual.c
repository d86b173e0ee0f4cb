/* hs_residual_forward / hs_residual_backward: argument checks and dispatch
 * on the device of the first tensor checked (CPU body or NPU kernel). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

/* hs_check_any_rank on `device`: t non-NULL, fp32, rank 1..HS_MAX_DIMS. */
static hs_status check_any_rank_on(const char *op, const char *arg, const hs_tensor *t, const hs_device *device)
{
    if (t && (t->ndim < 1 || t->ndim > HS_MAX_DIMS))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s has rank %d, outside 1..%d", op, arg, t->ndim,
                        HS_MAX_DIMS);
    return hs_check_tensor_on(op, arg, t, HS_FP32, t ? t->ndim : 1, NULL, device);
}

hs_status hs_residual_forward(hs_tensor *out, const hs_tensor *a, const hs_tensor *b)
{
    static const char op[] = "hs_residual_forward";
    const hs_device *dev = a ? a->device : NULL;
    HS_TRY(check_any_rank_on(op, "a", a, dev));
    HS_TRY(hs_check_tensor_on(op, "b", b, HS_FP32, a->ndim, a->shape, dev));
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, a->ndim, a->shape, dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_residual_forward(dev, out->data, a->data, b->data, hs_tensor_numel(a));
    hs_cpu_residual_forward(out->data, a->data, b->data, hs_tensor_numel(a));
    return HS_OK;
}

hs_status hs_residual_backward(hs_tensor *da, hs_tensor *db, const hs_tensor *dout)
{
    static const char op[] = "hs_residual_backward";
    const hs_device *dev = dout ? dout->device : NULL;
    HS_TRY(check_any_rank_on(op, "dout", dout, dev));
    HS_TRY(hs_check_optional_on(op, "da", da, HS_FP32, dout->ndim, dout->shape, dev));
    HS_TRY(hs_check_optional_on(op, "db", db, HS_FP32, dout->ndim, dout->shape, dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_residual_backward(dev, da ? da->data : NULL, db ? db->data : NULL, dout->data,
                                        hs_tensor_numel(dout));
    hs_cpu_residual_backward(da ? da->data : NULL, db ? db->data : NULL, dout->data, hs_tensor_numel(dout));
    return HS_OK;
}
