/* Fused softmax + cross-entropy entry points: argument checks, then the device body. */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"

/* logits [N,V], targets [N] int32 with every value in [-1, V); sets N, V. */
static hs_status ce_check(const char *op, const hs_tensor *logits, const hs_tensor *targets, int64_t *N, int64_t *V)
{
    hs_status s = hs_check_tensor(op, "logits", logits, HS_FP32, 2, NULL);
    if (s)
        return s;
    *N = logits->shape[0];
    *V = logits->shape[1];
    if ((s = hs_check_tensor(op, "targets", targets, HS_INT32, 1, HS_DIMS(*N))))
        return s;
    const int32_t *t = targets->data;
    for (int64_t n = 0; n < *N; n++)
        if (t[n] < -1 || t[n] >= *V)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: targets[%lld] = %d is outside [-1, %lld)", op, (long long)n,
                            t[n], (long long)*V);
    return HS_OK;
}

hs_status hs_cross_entropy_forward(hs_tensor *losses, hs_tensor *lse, const hs_tensor *logits, const hs_tensor *targets)
{
    int64_t N, V;
    hs_status s;
    if ((s = ce_check(__func__, logits, targets, &N, &V)) ||
        (s = hs_check_tensor(__func__, "losses", losses, HS_FP32, 1, HS_DIMS(N))) ||
        (s = hs_check_tensor(__func__, "lse", lse, HS_FP32, 1, HS_DIMS(N))))
        return s;
    hs_cpu_cross_entropy_forward(losses->data, lse->data, logits->data, targets->data, N, V);
    return HS_OK;
}

hs_status hs_cross_entropy_backward(hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                                    const hs_tensor *targets, float dloss)
{
    int64_t N, V;
    hs_status s;
    if ((s = ce_check(__func__, logits, targets, &N, &V)) ||
        (s = hs_check_optional(__func__, "dlogits", dlogits, HS_FP32, 2, HS_DIMS(N, V))) ||
        (s = hs_check_tensor(__func__, "lse", lse, HS_FP32, 1, HS_DIMS(N))))
        return s;
    if (dlogits)
        hs_cpu_cross_entropy_backward(dlogits->data, logits->data, lse->data, targets->data, N, V, dloss);
    return HS_OK;
}
