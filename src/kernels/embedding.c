/* hs_embedding_forward / hs_embedding_backward: argument checks (including
 * every token's range) and dispatch. */
#include "core/try.h"
#include "kernels/cpu/dense.h"

/* tokens[B,T] int32, each in [0, V). */
static hs_status check_tokens(const char *op, const hs_tensor *tokens, int64_t V)
{
    const int32_t *tok = tokens->data;
    const int64_t T = tokens->shape[1], n = tokens->shape[0] * T;
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: tokens[%lld][%lld] (position %lld) is %d, outside [0, %lld)",
                            op, (long long)(i / T), (long long)(i % T), (long long)i, (int)tok[i], (long long)V);
    return HS_OK;
}

/* wpe[maxT,C] with maxT >= T. */
static hs_status check_positions(const char *op, const char *arg, const hs_tensor *wpe, int64_t T, int64_t C)
{
    HS_TRY(hs_check_optional(op, arg, wpe, HS_FP32, 2, HS_DIMS(-1, C)));
    if (wpe && wpe->shape[0] < T)
        return hs_error(HS_ERR_SHAPE_MISMATCH, "%s: %s has %lld positions, fewer than T=%lld", op, arg,
                        (long long)wpe->shape[0], (long long)T);
    return HS_OK;
}

hs_status hs_embedding_forward(hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte, const hs_tensor *wpe)
{
    static const char op[] = "hs_embedding_forward";
    HS_TRY(hs_check_tensor(op, "tokens", tokens, HS_INT32, 2, NULL));
    HS_TRY(hs_check_tensor(op, "wte", wte, HS_FP32, 2, NULL));
    const int64_t B = tokens->shape[0], T = tokens->shape[1], C = wte->shape[1];
    HS_TRY(check_positions(op, "wpe", wpe, T, C));
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, 3, HS_DIMS(B, T, C)));
    HS_TRY(check_tokens(op, tokens, wte->shape[0]));
    hs_cpu_embedding_forward(out->data, tokens->data, wte->data, wpe ? wpe->data : NULL, B, T, C);
    return HS_OK;
}

hs_status hs_embedding_backward(hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout, const hs_tensor *tokens)
{
    static const char op[] = "hs_embedding_backward";
    HS_TRY(hs_check_tensor(op, "tokens", tokens, HS_INT32, 2, NULL));
    const int64_t B = tokens->shape[0], T = tokens->shape[1];
    HS_TRY(hs_check_tensor(op, "dout", dout, HS_FP32, 3, HS_DIMS(B, T, -1)));
    const int64_t C = dout->shape[2];
    HS_TRY(hs_check_optional(op, "dwte", dwte, HS_FP32, 2, HS_DIMS(-1, C)));
    HS_TRY(check_positions(op, "dwpe", dwpe, T, C));
    if (dwte)
        HS_TRY(check_tokens(op, tokens, dwte->shape[0]));
    hs_cpu_embedding_backward(dwte ? dwte->data : NULL, dwpe ? dwpe->data : NULL, dout->data, tokens->data, B, T, C);
    return HS_OK;
}
