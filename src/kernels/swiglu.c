/* SwiGLU entry points: argument checks, then the device body. */
#include "hyperspeed/kernels.h"
#include "kernels/check.h"
#include "kernels/cpu/seq.h"

/* inp must be [N, 2F]; sets N and F. */
static hs_status swiglu_dims(const char *op, const hs_tensor *inp, int64_t *N, int64_t *F)
{
    hs_status s = hs_check_tensor(op, "inp", inp, HS_FP32, 2, NULL);
    if (s)
        return s;
    if (inp->shape[1] % 2)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: inp dim 1 is %lld; it must be even ([gate | up])", op,
                        (long long)inp->shape[1]);
    *N = inp->shape[0];
    *F = inp->shape[1] / 2;
    return HS_OK;
}

hs_status hs_swiglu_forward(hs_tensor *out, const hs_tensor *inp)
{
    int64_t N, F;
    hs_status s;
    if ((s = swiglu_dims(__func__, inp, &N, &F)) ||
        (s = hs_check_tensor(__func__, "out", out, HS_FP32, 2, HS_DIMS(N, F))))
        return s;
    hs_cpu_swiglu_forward(out->data, inp->data, N, F);
    return HS_OK;
}

hs_status hs_swiglu_backward(hs_tensor *dinp, const hs_tensor *dout, const hs_tensor *inp)
{
    int64_t N, F;
    hs_status s;
    if ((s = swiglu_dims(__func__, inp, &N, &F)) ||
        (s = hs_check_optional(__func__, "dinp", dinp, HS_FP32, 2, HS_DIMS(N, 2 * F))) ||
        (s = hs_check_tensor(__func__, "dout", dout, HS_FP32, 2, HS_DIMS(N, F))))
        return s;
    if (dinp)
        hs_cpu_swiglu_backward(dinp->data, dout->data, inp->data, N, F);
    return HS_OK;
}
