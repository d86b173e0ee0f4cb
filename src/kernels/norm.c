/* LayerNorm and RMSNorm entry points: argument checks and dispatch. */
#include "core/try.h"
#include "kernels/cpu/dense.h"

#include <math.h>

static hs_status check_eps(const char *op, float eps)
{
    if (!(eps >= 0.0f) || isinf(eps))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: eps=%g must be finite and >= 0", op, (double)eps);
    return HS_OK;
}

hs_status hs_layernorm_forward(hs_tensor *out, hs_tensor *mean, hs_tensor *rstd, const hs_tensor *inp,
                               const hs_tensor *w, const hs_tensor *b, float eps)
{
    static const char op[] = "hs_layernorm_forward";
    HS_TRY(hs_check_tensor(op, "inp", inp, HS_FP32, 2, NULL));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "mean", mean, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_optional(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_tensor(op, "w", w, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(hs_check_tensor(op, "b", b, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(check_eps(op, eps));
    hs_cpu_layernorm_forward(out->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, inp->data, w->data,
                             b->data, eps, N, C);
    return HS_OK;
}

hs_status hs_layernorm_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *db, const hs_tensor *dout,
                                const hs_tensor *inp, const hs_tensor *w, const hs_tensor *mean,
                                const hs_tensor *rstd)
{
    static const char op[] = "hs_layernorm_backward";
    HS_TRY(hs_check_tensor(op, "inp", inp, HS_FP32, 2, NULL));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_tensor(op, "w", w, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(hs_check_tensor(op, "mean", mean, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_tensor(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_optional(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "dw", dw, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(hs_check_optional(op, "db", db, HS_FP32, 1, HS_DIMS(C)));
    return hs_cpu_layernorm_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL,
                                     dout->data, inp->data, w->data, mean->data, rstd->data, N, C);
}

hs_status hs_rmsnorm_forward(hs_tensor *out, hs_tensor *rstd, const hs_tensor *inp, const hs_tensor *w, float eps)
{
    static const char op[] = "hs_rmsnorm_forward";
    HS_TRY(hs_check_tensor(op, "inp", inp, HS_FP32, 2, NULL));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_tensor(op, "w", w, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(check_eps(op, eps));
    hs_cpu_rmsnorm_forward(out->data, rstd ? rstd->data : NULL, inp->data, w->data, eps, N, C);
    return HS_OK;
}

hs_status hs_rmsnorm_backward(hs_tensor *dinp, hs_tensor *dw, const hs_tensor *dout, const hs_tensor *inp,
                              const hs_tensor *w, const hs_tensor *rstd)
{
    static const char op[] = "hs_rmsnorm_backward";
    HS_TRY(hs_check_tensor(op, "inp", inp, HS_FP32, 2, NULL));
    const int64_t N = inp->shape[0], C = inp->shape[1];
    HS_TRY(hs_check_tensor(op, "dout", dout, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_tensor(op, "w", w, HS_FP32, 1, HS_DIMS(C)));
    HS_TRY(hs_check_tensor(op, "rstd", rstd, HS_FP32, 1, HS_DIMS(N)));
    HS_TRY(hs_check_optional(op, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, C)));
    HS_TRY(hs_check_optional(op, "dw", dw, HS_FP32, 1, HS_DIMS(C)));
    return hs_cpu_rmsnorm_backward(dinp ? dinp->data : NULL, dw ? dw->data : NULL, dout->data, inp->data, w->data,
                                   rstd->data, N, C);
}
