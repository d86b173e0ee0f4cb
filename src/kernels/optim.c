/* Optimizer kernels: AdamW, global gradient norm, clip scale, in-place
 * scaling. Argument checks and dispatch on the device of the first tensor
 * (CPU bodies, or the NPU kernels for NPU tensors). */
#include "core/try.h"
#include "kernels/cpu/dense.h"
#include "kernels/npu/npu_kernels.h"

#include <math.h>
#include <stdio.h>

/* hs_check_any_rank on `device`: t non-NULL, fp32, rank 1..HS_MAX_DIMS. */
static hs_status check_any_rank_on(const char *op, const char *arg, const hs_tensor *t, const hs_device *device)
{
    if (t && (t->ndim < 1 || t->ndim > HS_MAX_DIMS))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s has rank %d, outside 1..%d", op, arg, t->ndim,
                        HS_MAX_DIMS);
    return hs_check_tensor_on(op, arg, t, HS_FP32, t ? t->ndim : 1, NULL, device);
}

hs_adamw_params hs_adamw_params_default(void)
{
    hs_adamw_params p = {.lr = 3e-4f,
                         .beta1 = 0.9f,
                         .beta2 = 0.95f,
                         .eps = 1e-8f,
                         .weight_decay = 0.1f,
                         .grad_scale = 1.0f,
                         .step = 1};
    return p;
}

static hs_status check_hyper(const char *op, const hs_adamw_params *p)
{
    if (!p)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: params is NULL", op);
    if (p->step < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: step=%lld must be >= 1 (steps count from 1)", op,
                        (long long)p->step);
    if (!(p->lr >= 0.0f) || isinf(p->lr))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: lr=%g must be finite and >= 0", op, (double)p->lr);
    if (!(p->beta1 >= 0.0f && p->beta1 < 1.0f) || !(p->beta2 >= 0.0f && p->beta2 < 1.0f))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: betas (%g, %g) must lie in [0, 1)", op, (double)p->beta1,
                        (double)p->beta2);
    if (!(p->eps > 0.0f) || isinf(p->eps))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: eps=%g must be finite and > 0", op, (double)p->eps);
    if (!(p->weight_decay >= 0.0f) || isinf(p->weight_decay))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: weight_decay=%g must be finite and >= 0", op,
                        (double)p->weight_decay);
    if (!(p->grad_scale >= 0.0f) || isinf(p->grad_scale))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: grad_scale=%g must be finite and >= 0", op,
                        (double)p->grad_scale);
    return HS_OK;
}

hs_status hs_adamw_update(hs_tensor *param, const hs_tensor *grad, hs_tensor *m, hs_tensor *v,
                          const hs_adamw_params *p)
{
    static const char op[] = "hs_adamw_update";
    const hs_device *dev = param ? param->device : NULL;
    HS_TRY(check_any_rank_on(op, "param", param, dev));
    HS_TRY(check_any_rank_on(op, "grad", grad, dev));
    HS_TRY(check_any_rank_on(op, "m", m, dev));
    HS_TRY(check_any_rank_on(op, "v", v, dev));
    HS_TRY(hs_check_same_numel(op, "grad", grad, "param", param));
    HS_TRY(hs_check_same_numel(op, "m", m, "param", param));
    HS_TRY(hs_check_same_numel(op, "v", v, "param", param));
    HS_TRY(check_hyper(op, p));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_adamw_update(dev, param->data, grad->data, m->data, v->data, hs_tensor_numel(param), p);
    hs_cpu_adamw_update(param->data, grad->data, m->data, v->data, hs_tensor_numel(param), p);
    return HS_OK;
}

hs_status hs_grad_norm(const hs_tensor *grads, int n_tensors, double *norm)
{
    static const char op[] = "hs_grad_norm";
    if (!norm)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: norm is NULL", op);
    if (n_tensors < 0 || (n_tensors > 0 && !grads))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %d tensors at %p", op, n_tensors, (const void *)grads);
    const hs_device *dev = n_tensors > 0 ? grads[0].device : NULL;
    for (int i = 0; i < n_tensors; i++) {
        char name[32];
        snprintf(name, sizeof name, "grads[%d]", i);
        HS_TRY(check_any_rank_on(op, name, &grads[i], dev));
    }
    double total = 0.0;
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU) {
        HS_TRY(hs_npu_sum_squares(dev, grads, n_tensors, &total));
        *norm = sqrt(total);
        return HS_OK;
    }
    for (int i = 0; i < n_tensors; i++) {
        double s;
        HS_TRY(hs_cpu_sum_squares(grads[i].data, hs_tensor_numel(&grads[i]), &s));
        total += s;
    }
    *norm = sqrt(total);
    return HS_OK;
}

float hs_clip_scale(double norm, float max_norm)
{
    if (!(max_norm > 0.0f))
        return 1.0f;
    const double s = max_norm / (norm + 1e-6);
    return s > 1.0 ? 1.0f : (float)s; /* a NaN norm gives NaN, as in PyTorch */
}

hs_status hs_scale_inplace(hs_tensor *t, float scale)
{
    const hs_device *dev = t ? t->device : NULL;
    HS_TRY(check_any_rank_on("hs_scale_inplace", "t", t, dev));
    if (hs_device_kind_of(dev) == HS_DEVICE_NPU)
        return hs_npu_scale(dev, t->data, hs_tensor_numel(t), scale);
    hs_cpu_scale(t->data, hs_tensor_numel(t), scale);
    return HS_OK;
}
