/* Causal self-attention entry points: argument checks, then the device body. */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"

/* qkv must be [B,T,3C] with n_head dividing C; sets B, T, C. */
static hs_status attention_dims(const char *op, const hs_tensor *qkv, int n_head, int64_t *B, int64_t *T, int64_t *C)
{
    hs_status s = hs_check_tensor(op, "qkv", qkv, HS_FP32, 3, NULL);
    if (s)
        return s;
    if (qkv->shape[2] % 3)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: qkv dim 2 is %lld, not 3*C", op, (long long)qkv->shape[2]);
    *B = qkv->shape[0];
    *T = qkv->shape[1];
    *C = qkv->shape[2] / 3;
    if (n_head < 1 || *C % n_head)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: n_head=%d does not divide C=%lld", op, n_head, (long long)*C);
    return HS_OK;
}

hs_status hs_attention_forward(hs_tensor *out, hs_tensor *lse, const hs_tensor *qkv, int n_head)
{
    int64_t B, T, C;
    hs_status s;
    if ((s = attention_dims(__func__, qkv, n_head, &B, &T, &C)) ||
        (s = hs_check_tensor(__func__, "out", out, HS_FP32, 3, HS_DIMS(B, T, C))) ||
        (s = hs_check_tensor(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(B, n_head, T))))
        return s;
    return hs_cpu_attention_forward(out->data, lse->data, qkv->data, B, T, n_head, C / n_head);
}

hs_status hs_attention_backward(hs_tensor *dqkv, const hs_tensor *dout, const hs_tensor *qkv, const hs_tensor *out,
                                const hs_tensor *lse, int n_head)
{
    int64_t B, T, C;
    hs_status s;
    if ((s = attention_dims(__func__, qkv, n_head, &B, &T, &C)) ||
        (s = hs_check_optional(__func__, "dqkv", dqkv, HS_FP32, 3, HS_DIMS(B, T, 3 * C))) ||
        (s = hs_check_tensor(__func__, "dout", dout, HS_FP32, 3, HS_DIMS(B, T, C))) ||
        (s = hs_check_tensor(__func__, "out", out, HS_FP32, 3, HS_DIMS(B, T, C))) ||
        (s = hs_check_tensor(__func__, "lse", lse, HS_FP32, 3, HS_DIMS(B, n_head, T))))
        return s;
    if (!dqkv)
        return HS_OK;
    return hs_cpu_attention_backward(dqkv->data, dout->data, qkv->data, out->data, lse->data, B, T, n_head, C / n_head);
}
