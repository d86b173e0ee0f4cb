/* hs_residual_forward / hs_residual_backward: argument checks and dispatch. */
#include "core/try.h"
#include "kernels/cpu/dense.h"

hs_status hs_residual_forward(hs_tensor *out, const hs_tensor *a, const hs_tensor *b)
{
    static const char op[] = "hs_residual_forward";
    HS_TRY(hs_check_any_rank(op, "a", a));
    HS_TRY(hs_check_tensor(op, "b", b, HS_FP32, a->ndim, a->shape));
    HS_TRY(hs_check_tensor(op, "out", out, HS_FP32, a->ndim, a->shape));
    hs_cpu_residual_forward(out->data, a->data, b->data, hs_tensor_numel(a));
    return HS_OK;
}

hs_status hs_residual_backward(hs_tensor *da, hs_tensor *db, const hs_tensor *dout)
{
    static const char op[] = "hs_residual_backward";
    HS_TRY(hs_check_any_rank(op, "dout", dout));
    HS_TRY(hs_check_optional(op, "da", da, HS_FP32, dout->ndim, dout->shape));
    HS_TRY(hs_check_optional(op, "db", db, HS_FP32, dout->ndim, dout->shape));
    hs_cpu_residual_backward(da ? da->data : NULL, db ? db->data : NULL, dout->data, hs_tensor_numel(dout));
    return HS_OK;
}
