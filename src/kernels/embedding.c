/* hs_embedding_forward / hs_embedding_backward: argument checks (including
 * every token's range) and dispatch on the device of tokens (CPU body, or
 * the NPU kernels). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

/* tokens[B,T] int32, each in [0, V) (a shard: each >= 0, the ids of
 * other shards being legal). NPU tokens are checked where their values
 * exist: in execute mode, whose device memory is host memory (a
 * device-side assert, at no simulated cost); estimate mode has no values. */
static hs_status check_tokens(const char *op, const hs_tensor *tokens, int64_t V, int shard)
{
    if (hs_tensor_device_kind(tokens) == HS_DEVICE_NPU && hs_npu_mode_of(hs_device_npu(tokens->device)) != HS_NPU_EXECUTE)
        return HS_OK;
    const int32_t *tok = tokens->data;
    const int64_t T = tokens->shape[1], n = tokens->shape[0] * T;
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || (!shard && tok[i] >= V))
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tokens[%lld][%lld] (position %lld) is %d, outside [0, %lld)",
                            op, (long long)(i / T), (long long)(i % T), (long long)i, (int)tok[i],
                            (long long)(shard ? INT32_MAX : V));
    return HS_OK;
}

static hs_status check_start(const char *op, int64_t vocab_start)
{
    if (vocab_start < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: vocab_start = %lld is negative", op, (long long)vocab_start);
    return HS_OK;
}

/* wpe[maxT,C] with maxT >= T. */
static hs_status check_positions(const char *op, const char *arg, const hs_tensor *wpe, int64_t T, int64_t C,
                                 const hs_device *device)
{
    HS_TRY(hs_check_optional_on(op, arg, wpe, HS_FP32, 2, HS_DIMS(-1, C), device));
    if (wpe && wpe->shape[0] < T)
        return hs_error(HS_ERR_SHAPE_MISMATCH, "%s: %s has %lld positions, fewer than T=%lld", op, arg,
                        (long long)wpe->shape[0], (long long)T);
    return HS_OK;
}

/* The forward of the whole table or of a shard of rows from vocab_start. */
static hs_status forward(const char *op, hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte,
                         const hs_tensor *wpe, int shard, int64_t vocab_start)
{
    const hs_device *dev = tokens ? tokens->device : NULL;
    HS_TRY(check_start(op, vocab_start));
    HS_TRY(hs_check_tensor_on(op, "tokens", tokens, HS_INT32, 2, NULL, dev));
    HS_TRY(hs_check_tensor_on(op, "wte", wte, HS_FP32, 2, NULL, dev));
    const int64_t B = tokens->shape[0], T = tokens->shape[1], C = wte->shape[1], V = wte->shape[0];
    HS_TRY(check_positions(op, "wpe", wpe, T, C, dev));
    HS_TRY(hs_check_tensor_on(op, "out", out, HS_FP32, 3, HS_DIMS(B, T, C), dev));
    HS_TRY(check_tokens(op, tokens, V, shard));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_embedding_forward(dev, out->data, tokens->data, wte->data, wpe ? wpe->data : NULL, B, T, C, V,
                                        vocab_start, shard);
    hs_cpu_embedding_forward(out->data, tokens->data, wte->data, wpe ? wpe->data : NULL, B, T, C, V, vocab_start);
    return HS_OK;
}

/* The backward of the whole table or of a shard of rows from vocab_start. */
static hs_status backward(const char *op, hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout,
                          const hs_tensor *tokens, int shard, int64_t vocab_start)
{
    const hs_device *dev = tokens ? tokens->device : NULL;
    HS_TRY(check_start(op, vocab_start));
    HS_TRY(hs_check_tensor_on(op, "tokens", tokens, HS_INT32, 2, NULL, dev));
    const int64_t B = tokens->shape[0], T = tokens->shape[1];
    HS_TRY(hs_check_tensor_on(op, "dout", dout, HS_FP32, 3, HS_DIMS(B, T, -1), dev));
    const int64_t C = dout->shape[2], V = dwte ? dwte->shape[0] : 1;
    HS_TRY(hs_check_optional_on(op, "dwte", dwte, HS_FP32, 2, HS_DIMS(-1, C), dev));
    HS_TRY(check_positions(op, "dwpe", dwpe, T, C, dev));
    if (dwte)
        HS_TRY(check_tokens(op, tokens, V, shard));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_embedding_backward(dev, dwte ? dwte->data : NULL, dwpe ? dwpe->data : NULL, dout->data, tokens->data,
                                         B, T, C, V, vocab_start, shard);
    hs_cpu_embedding_backward(dwte ? dwte->data : NULL, dwpe ? dwpe->data : NULL, dout->data, tokens->data, B, T, C, V,
                              vocab_start);
    return HS_OK;
}

hs_status hs_embedding_forward(hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte, const hs_tensor *wpe)
{
    return forward("hs_embedding_forward", out, tokens, wte, wpe, 0, 0);
}

hs_status hs_embedding_backward(hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout, const hs_tensor *tokens)
{
    return backward("hs_embedding_backward", dwte, dwpe, dout, tokens, 0, 0);
}

hs_status hs_embedding_shard_forward(hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte,
                                     const hs_tensor *wpe, int64_t vocab_start)
{
    return forward("hs_embedding_shard_forward", out, tokens, wte, wpe, 1, vocab_start);
}

hs_status hs_embedding_shard_backward(hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout,
                                      const hs_tensor *tokens, int64_t vocab_start)
{
    return backward("hs_embedding_shard_backward", dwte, dwpe, dout, tokens, 1, vocab_start);
}
