/* Rotary position embedding entry points: argument checks, then the body
 * of the input's device (CPU, or the NPU kernel for NPU tensors). */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"
#include "kernels/npu/npu_kernels.h"

/* x is [B,T,H,HD] with HD even, n_rot_heads in [0,H], theta > 0 and
 * finite, pos0 >= 0. */
static hs_status rope_check(const char *op, const char *name, const hs_tensor *x, int n_rot_heads, float theta,
                            int64_t pos0)
{
    hs_status s = hs_check_tensor_on(op, name, x, HS_FP32, 4, NULL, x ? x->device : NULL);
    if (s)
        return s;
    if (x->shape[3] % 2)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: head size %lld is odd; RoPE rotates pairs", op,
                        (long long)x->shape[3]);
    if (n_rot_heads < 0 || n_rot_heads > x->shape[2])
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: n_rot_heads=%d is outside [0, %lld]", op, n_rot_heads,
                        (long long)x->shape[2]);
    if (!(theta > 0.0f) || isinf(theta))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: theta=%g must be positive and finite", op, (double)theta);
    if (pos0 < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: pos0=%lld: positions start at 0 or later", op, (long long)pos0);
    return HS_OK;
}

hs_status hs_rope_forward(hs_tensor *out, const hs_tensor *inp, int n_rot_heads, float theta, int64_t pos0)
{
    hs_status s;
    if ((s = rope_check(__func__, "inp", inp, n_rot_heads, theta, pos0)) ||
        (s = hs_check_tensor_on(__func__, "out", out, HS_FP32, 4, inp->shape, inp->device)))
        return s;
    if (hs_tensor_device_kind(inp) == HS_DEVICE_NPU)
        return hs_npu_rope(inp->device, out->data, inp->data, inp->shape[0], inp->shape[1], inp->shape[2], inp->shape[3],
                           n_rot_heads, theta, pos0, 0);
    hs_cpu_rope(out->data, inp->data, inp->shape[0], inp->shape[1], inp->shape[2], inp->shape[3], n_rot_heads, theta,
                pos0, 0);
    return HS_OK;
}

hs_status hs_rope_backward(hs_tensor *dinp, const hs_tensor *dout, int n_rot_heads, float theta, int64_t pos0)
{
    hs_status s;
    if ((s = rope_check(__func__, "dout", dout, n_rot_heads, theta, pos0)) ||
        (s = hs_check_optional_on(__func__, "dinp", dinp, HS_FP32, 4, dout->shape, dout->device)))
        return s;
    if (dinp && hs_tensor_device_kind(dout) == HS_DEVICE_NPU)
        return hs_npu_rope(dout->device, dinp->data, dout->data, dout->shape[0], dout->shape[1], dout->shape[2], dout->shape[3],
                           n_rot_heads, theta, pos0, 1);
    if (dinp)
        hs_cpu_rope(dinp->data, dout->data, dout->shape[0], dout->shape[1], dout->shape[2], dout->shape[3], n_rot_heads,
                    theta, pos0, 1);
    return HS_OK;
}
