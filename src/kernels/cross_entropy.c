/* Fused softmax + cross-entropy entry points: argument checks, then the
 * body of the logits' device (CPU, or the NPU kernels for NPU tensors). */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"
#include "kernels/npu/npu_kernels.h"

/* logits [N,V], targets [N] int32 with every value in [-1, V) (a shard:
 * -1 or any vocabulary id >= 0, vocab_start >= 0); sets N, V. NPU targets
 * are checked where their values exist: in execute mode, whose device
 * memory is host memory (a device-side assert, at no simulated cost);
 * estimate mode has no values. */
static hs_status ce_check(const char *op, const hs_tensor *logits, const hs_tensor *targets, int shard,
                          int64_t vocab_start, int64_t *N, int64_t *V)
{
    const hs_device *dev = logits ? logits->device : NULL;
    hs_status s = hs_check_tensor_on(op, "logits", logits, HS_FP32, 2, NULL, dev);
    if (s)
        return s;
    *N = logits->shape[0];
    *V = logits->shape[1];
    if (vocab_start < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: vocab_start = %lld is negative", op, (long long)vocab_start);
    if ((s = hs_check_tensor_on(op, "targets", targets, HS_INT32, 1, HS_DIMS(*N), dev)))
        return s;
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU && hs_npu_mode_of(hs_device_npu(dev)) != HS_NPU_EXECUTE)
        return HS_OK;
    const int32_t *t = targets->data;
    for (int64_t n = 0; n < *N; n++)
        if (t[n] < -1 || (!shard && t[n] >= *V))
            return shard ? hs_error(HS_ERR_INVALID_ARGUMENT, "%s: targets[%lld] = %d is below -1", op, (long long)n,
                                    t[n])
                         : hs_error(HS_ERR_INVALID_ARGUMENT, "%s: targets[%lld] = %d is outside [-1, %lld)", op,
                                    (long long)n, t[n], (long long)*V);
    return HS_OK;
}

/* The forward of the whole vocabulary or of a shard (out: losses or x[target]). */
static hs_status forward(const char *op, hs_tensor *out, hs_tensor *lse, const hs_tensor *logits,
                         const hs_tensor *targets, int shard, int64_t vocab_start)
{
    int64_t N, V;
    hs_status s;
    if ((s = ce_check(op, logits, targets, shard, vocab_start, &N, &V)) ||
        (s = hs_check_tensor_on(op, shard ? "xt" : "losses", out, HS_FP32, 1, HS_DIMS(N), logits->device)) ||
        (s = hs_check_tensor_on(op, "lse", lse, HS_FP32, 1, HS_DIMS(N), logits->device)))
        return s;
    if (hs_tensor_device_kind(logits) == HS_DEVICE_NPU)
        return hs_npu_cross_entropy_forward(logits->device, out->data, lse->data, logits->data, targets->data, N, V, vocab_start,
                                            shard);
    hs_cpu_cross_entropy_forward(out->data, lse->data, logits->data, targets->data, N, V, vocab_start, shard);
    return HS_OK;
}

/* The backward of the whole vocabulary or of a shard. */
static hs_status backward(const char *op, hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                          const hs_tensor *targets, int shard, int64_t vocab_start, float dloss)
{
    int64_t N, V;
    hs_status s;
    if ((s = ce_check(op, logits, targets, shard, vocab_start, &N, &V)) ||
        (s = hs_check_optional_on(op, "dlogits", dlogits, HS_FP32, 2, HS_DIMS(N, V), logits->device)) ||
        (s = hs_check_tensor_on(op, "lse", lse, HS_FP32, 1, HS_DIMS(N), logits->device)))
        return s;
    if (dlogits && hs_tensor_device_kind(logits) == HS_DEVICE_NPU)
        return hs_npu_cross_entropy_backward(logits->device, dlogits->data, logits->data, lse->data, targets->data, N, V, vocab_start,
                                             shard, dloss);
    if (dlogits)
        hs_cpu_cross_entropy_backward(dlogits->data, logits->data, lse->data, targets->data, N, V, vocab_start, dloss);
    return HS_OK;
}

hs_status hs_cross_entropy_forward(hs_tensor *losses, hs_tensor *lse, const hs_tensor *logits, const hs_tensor *targets)
{
    return forward(__func__, losses, lse, logits, targets, 0, 0);
}

hs_status hs_cross_entropy_backward(hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                                    const hs_tensor *targets, float dloss)
{
    return backward(__func__, dlogits, logits, lse, targets, 0, 0, dloss);
}

hs_status hs_cross_entropy_shard_forward(hs_tensor *xt, hs_tensor *lse, const hs_tensor *logits,
                                         const hs_tensor *targets, int64_t vocab_start)
{
    return forward(__func__, xt, lse, logits, targets, 1, vocab_start);
}

hs_status hs_cross_entropy_shard_backward(hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                                          const hs_tensor *targets, int64_t vocab_start, float dloss)
{
    return backward(__func__, dlogits, logits, lse, targets, 1, vocab_start, dloss);
}
