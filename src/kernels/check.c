/* Argument checks shared by the kernel entry points. */
#include "kernels/check.h"

static const char *device_name(const hs_device *d)
{
    return hs_device_kind_of(d) == HS_DEVICE_CPU ? "cpu" : "npu";
}

hs_status hs_check_tensor_on(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                             const int64_t *dims, const hs_device *device)
{
    if (!t || !t->data)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, arg);
    if (!hs_device_same(t->device, device))
        return hs_error(HS_ERR_DEVICE,
                        "%s: %s is on the %s device, expected %s (no %s body for this op, mixed devices, or two "
                        "NPUs)",
                        op, arg, device_name(t->device), device_name(device), device_name(t->device));
    if (t->dtype != dt)
        return hs_error(HS_ERR_DTYPE, "%s: %s is %s, expected %s", op, arg, hs_dtype_name(t->dtype),
                        hs_dtype_name(dt));
    if (t->ndim != ndim)
        return hs_error(HS_ERR_SHAPE_MISMATCH, "%s: %s has rank %d, expected %d", op, arg, t->ndim, ndim);
    for (int i = 0; i < ndim; i++) {
        if (t->shape[i] <= 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s dim %d has size %lld", op, arg, i,
                            (long long)t->shape[i]);
        if (dims && dims[i] >= 0 && t->shape[i] != dims[i])
            return hs_error(HS_ERR_SHAPE_MISMATCH, "%s: %s dim %d is %lld, expected %lld", op, arg, i,
                            (long long)t->shape[i], (long long)dims[i]);
    }
    return HS_OK;
}

hs_status hs_check_tensor(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                          const int64_t *dims)
{
    return hs_check_tensor_on(op, arg, t, dt, ndim, dims, NULL);
}

hs_status hs_check_optional_on(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                               const int64_t *dims, const hs_device *device)
{
    return t ? hs_check_tensor_on(op, arg, t, dt, ndim, dims, device) : HS_OK;
}

hs_status hs_check_optional(const char *op, const char *arg, const hs_tensor *t, hs_dtype dt, int ndim,
                            const int64_t *dims)
{
    return hs_check_optional_on(op, arg, t, dt, ndim, dims, NULL);
}

hs_status hs_check_same_numel(const char *op, const char *an, const hs_tensor *a, const char *bn, const hs_tensor *b)
{
    if (hs_tensor_numel(a) != hs_tensor_numel(b))
        return hs_error(HS_ERR_SHAPE_MISMATCH, "%s: %s has %lld elements but %s has %lld", op, an,
                        (long long)hs_tensor_numel(a), bn, (long long)hs_tensor_numel(b));
    return HS_OK;
}
