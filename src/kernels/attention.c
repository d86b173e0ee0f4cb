/* Causal self-attention entry points: argument checks, then the body for
 * the tensors' device (the CPU flash kernel, or the NPU one for tensors on
 * HS_DEVICE_NPU; every tensor must be on qkv's device). */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"
#include "kernels/npu/npu_kernels.h"

/* qkv must be [B,T,(n_head + 2 n_kv_head) HD] on `dev` with n_kv_head
 * dividing n_head; sets B, T, HD. */
static hs_status attention_dims(const char *op, const hs_tensor *qkv, int n_head, int n_kv_head, const hs_device *dev,
                                int64_t *B, int64_t *T, int64_t *HD)
{
    HS_TRY(hs_check_tensor_on(op, "qkv", qkv, HS_FP32, 3, NULL, dev));
    if (n_head < 1 || n_kv_head < 1 || n_head % n_kv_head)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: n_kv_head=%d does not divide n_head=%d", op, n_kv_head, n_head);
    const int64_t width = n_head + 2 * (int64_t)n_kv_head;
    if (qkv->shape[2] % width)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "%s: qkv dim 2 is %lld, not (n_head + 2 n_kv_head) * head "
                        "size with n_head=%d, n_kv_head=%d",
                        op, (long long)qkv->shape[2], n_head, n_kv_head);
    *B = qkv->shape[0];
    *T = qkv->shape[1];
    *HD = qkv->shape[2] / width;
    return HS_OK;
}

hs_status hs_attention_forward(hs_tensor *out, hs_tensor *lse, const hs_tensor *qkv, int n_head, int n_kv_head)
{
    int64_t B, T, HD;
    const hs_device *dev = qkv ? qkv->device : NULL;
    HS_TRY(attention_dims(__func__, qkv, n_head, n_kv_head, dev, &B, &T, &HD));
    HS_TRY(hs_check_tensor_on(__func__, "out", out, HS_FP32, 3, HS_DIMS(B, T, n_head * HD), dev));
    HS_TRY(hs_check_tensor_on(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(B, n_head, T), dev));
    const hs_attention_call a = {qkv->data, qkv->data, B, T, n_head, n_kv_head, HD, 1};
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_attention_forward(dev, out->data, lse->data, &a);
    return hs_cpu_attention_forward(out->data, lse->data, &a);
}

hs_status hs_attention_backward(hs_tensor *dqkv, const hs_tensor *dout, const hs_tensor *qkv, const hs_tensor *out,
                                const hs_tensor *lse, int n_head, int n_kv_head)
{
    int64_t B, T, HD;
    const hs_device *dev = qkv ? qkv->device : NULL;
    HS_TRY(attention_dims(__func__, qkv, n_head, n_kv_head, dev, &B, &T, &HD));
    const int64_t C = n_head * HD;
    HS_TRY(hs_check_optional_on(__func__, "dqkv", dqkv, HS_FP32, 3, HS_DIMS(B, T, qkv->shape[2]), dev));
    HS_TRY(hs_check_tensor_on(__func__, "dout", dout, HS_FP32, 3, HS_DIMS(B, T, C), dev));
    HS_TRY(hs_check_tensor_on(__func__, "out", out, HS_FP32, 3, HS_DIMS(B, T, C), dev));
    HS_TRY(hs_check_tensor_on(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(B, n_head, T), dev));
    if (!dqkv)
        return HS_OK;
    const hs_attention_call a = {qkv->data, qkv->data, B, T, n_head, n_kv_head, HD, 1};
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_attention_backward(dev, dqkv->data, dqkv->data, dout->data, out->data, lse->data, &a);
    return hs_cpu_attention_backward(dqkv->data, dqkv->data, dout->data, out->data, lse->data, &a);
}
