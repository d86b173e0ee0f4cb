/* Attention entry points: argument checks, then the body for the tensors'
 * device (the CPU flash kernel, or the NPU one for tensors on
 * HS_DEVICE_NPU; every tensor must be on qkv's device). Self-attention is
 * causal; attention over another block of the sequence (context
 * parallelism) is causal, unmasked or empty by the blocks' positions. */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"
#include "kernels/npu/npu_kernels.h"

#include <math.h>

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

/* How kv's block [kv_pos0, kv_pos0 + T) relates to the queries' [q_pos0,
 * q_pos0 + T): *visible 1 with *causal 1 (the same positions) or 0 (wholly
 * before), or *visible 0 (wholly after). */
static hs_status block_relation(const char *op, int64_t T, int64_t q_pos0, int64_t kv_pos0, int *visible, int *causal)
{
    if (q_pos0 < 0 || kv_pos0 < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: positions q_pos0=%lld, kv_pos0=%lld must be >= 0", op,
                        (long long)q_pos0, (long long)kv_pos0);
    *causal = q_pos0 == kv_pos0;
    *visible = *causal || kv_pos0 + T - 1 <= q_pos0;
    if (*visible || kv_pos0 > q_pos0 + T - 1)
        return HS_OK;
    return hs_error(HS_ERR_INVALID_ARGUMENT,
                    "%s: the key block at positions %lld..%lld overlaps the queries' %lld..%lld in part: it must "
                    "be the same block, or lie wholly before or wholly after it (context parallelism's chunks)",
                    op, (long long)kv_pos0, (long long)(kv_pos0 + T - 1), (long long)q_pos0,
                    (long long)(q_pos0 + T - 1));
}

/* qkv's dims, kv shaped as qkv on its device, and the blocks' relation. */
static hs_status kv_dims(const char *op, const hs_tensor *qkv, const hs_tensor *kv, int n_head, int n_kv_head,
                         int64_t q_pos0, int64_t kv_pos0, hs_attention_call *a, int *visible)
{
    const hs_device *dev = qkv ? qkv->device : NULL;
    HS_TRY(attention_dims(op, qkv, n_head, n_kv_head, dev, &a->B, &a->T, &a->HD));
    HS_TRY(hs_check_tensor_on(op, "kv", kv, HS_FP32, 3, HS_DIMS(a->B, a->T, qkv->shape[2]), dev));
    HS_TRY(block_relation(op, a->T, q_pos0, kv_pos0, visible, &a->causal));
    a->qkv = qkv->data;
    a->kv = kv->data;
    a->NH = n_head;
    a->NKV = n_kv_head;
    return HS_OK;
}

hs_status hs_attention_forward_kv(hs_tensor *out, hs_tensor *lse, const hs_tensor *qkv, const hs_tensor *kv,
                                  int n_head, int n_kv_head, int64_t q_pos0, int64_t kv_pos0)
{
    hs_attention_call a;
    int visible;
    HS_TRY(kv_dims(__func__, qkv, kv, n_head, n_kv_head, q_pos0, kv_pos0, &a, &visible));
    const hs_device *dev = qkv->device;
    HS_TRY(hs_check_tensor_on(__func__, "out", out, HS_FP32, 3, HS_DIMS(a.B, a.T, a.NH * a.HD), dev));
    HS_TRY(hs_check_tensor_on(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(a.B, a.NH, a.T), dev));
    if (!visible) { /* no key: nothing attended, weight 0 in a merge */
        HS_TRY(hs_fill(out, 0.0f));
        return hs_fill(lse, -INFINITY);
    }
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_attention_forward(dev, out->data, lse->data, &a);
    return hs_cpu_attention_forward(out->data, lse->data, &a);
}

hs_status hs_attention_backward_kv(hs_tensor *dq, hs_tensor *dkv, const hs_tensor *dout, const hs_tensor *qkv,
                                   const hs_tensor *kv, const hs_tensor *out, const hs_tensor *lse, int n_head,
                                   int n_kv_head, int64_t q_pos0, int64_t kv_pos0)
{
    hs_attention_call a;
    int visible;
    HS_TRY(kv_dims(__func__, qkv, kv, n_head, n_kv_head, q_pos0, kv_pos0, &a, &visible));
    const hs_device *dev = qkv->device;
    const int64_t C = a.NH * a.HD;
    HS_TRY(hs_check_tensor_on(__func__, "dq", dq, HS_FP32, 3, HS_DIMS(a.B, a.T, qkv->shape[2]), dev));
    HS_TRY(hs_check_tensor_on(__func__, "dkv", dkv, HS_FP32, 3, HS_DIMS(a.B, a.T, qkv->shape[2]), dev));
    HS_TRY(hs_check_tensor_on(__func__, "dout", dout, HS_FP32, 3, HS_DIMS(a.B, a.T, C), dev));
    HS_TRY(hs_check_tensor_on(__func__, "out", out, HS_FP32, 3, HS_DIMS(a.B, a.T, C), dev));
    HS_TRY(hs_check_tensor_on(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(a.B, a.NH, a.T), dev));
    if (!visible)
        return HS_OK;
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_attention_backward(dev, dq->data, dkv->data, dout->data, out->data, lse->data, &a);
    return hs_cpu_attention_backward(dq->data, dkv->data, dout->data, out->data, lse->data, &a);
}
