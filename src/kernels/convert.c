/* hs_cast / hs_fill: argument checks and dispatch on the tensors' device
 * (CPU body, or the NPU vector kernels). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

/* t non-NULL with data, on `device`, of rank 1..HS_MAX_DIMS with positive
 * sizes; its dtype is checked by the caller. */
static hs_status check_flat(const char *op, const char *arg, const hs_tensor *t, const hs_device *device)
{
    if (t && (t->ndim < 1 || t->ndim > HS_MAX_DIMS))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s has rank %d, outside 1..%d", op, arg, t->ndim,
                        HS_MAX_DIMS);
    return hs_check_tensor_on(op, arg, t, t ? t->dtype : HS_FP32, t ? t->ndim : 1, NULL, device);
}

static int is_half(hs_dtype dt) { return dt == HS_BF16 || dt == HS_FP16; }

hs_status hs_cast(hs_tensor *dst, const hs_tensor *src)
{
    static const char op[] = "hs_cast";
    const hs_device *dev = src ? src->device : NULL;
    HS_TRY(check_flat(op, "src", src, dev));
    HS_TRY(check_flat(op, "dst", dst, dev));
    if (!(src->dtype == HS_FP32 && is_half(dst->dtype)) && !(is_half(src->dtype) && dst->dtype == HS_FP32))
        return hs_error(HS_ERR_DTYPE, "%s: %s -> %s; casts go between fp32 and bf16 or fp16", op,
                        hs_dtype_name(src->dtype), hs_dtype_name(dst->dtype));
    HS_TRY(hs_check_same_numel(op, "dst", dst, "src", src));
    const int64_t n = hs_tensor_numel(src);
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_cast(dev, dst->data, dst->dtype, src->data, src->dtype, n);
    hs_cpu_cast(dst->data, dst->dtype, src->data, src->dtype, n);
    return HS_OK;
}

hs_status hs_fill(hs_tensor *t, float value)
{
    static const char op[] = "hs_fill";
    const hs_device *dev = t ? t->device : NULL;
    HS_TRY(check_flat(op, "t", t, dev));
    if (t->dtype != HS_FP32 && !is_half(t->dtype))
        return hs_error(HS_ERR_DTYPE, "%s: t is %s; fills take fp32, bf16 or fp16", op, hs_dtype_name(t->dtype));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_fill(dev, t->data, t->dtype, value, hs_tensor_numel(t));
    hs_cpu_fill(t->data, t->dtype, value, hs_tensor_numel(t));
    return HS_OK;
}
